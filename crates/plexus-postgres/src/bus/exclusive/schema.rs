//! The function an exclusive group's holder reads with.

/// `read_after(topic, xid, seq, max)`: up to `max` messages of `topic`
/// after `(xid, seq)`, of transactions older than every running one, in
/// `(xid, seq)` order (see the schema's module on why), with their `xid`
/// as text and `attempt` 1. When it returns fewer than `max`, a last row
/// with `seq` NULL follows: `attempt` 1 if committed messages wait behind
/// a running transaction (read again soon), else 0.
pub(crate) const READ_AFTER: &str = r#"
CREATE OR REPLACE FUNCTION {s}.read_after(p_topic text, p_xid xid8, p_seq bigint, p_max integer)
RETURNS TABLE (seq bigint, xid text, attempt integer, id text, source text, type text, specversion text,
               subject text, "time" timestamptz, datacontenttype text, partitionkey text, headers jsonb,
               data bytea)
LANGUAGE plpgsql
-- As `claim()`: planned for the values at hand, a fresh topic's
-- statistics make a bitmap scan and a sort look cheaper than the index.
SET enable_bitmapscan = off
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
    v_xmin xid8 := pg_snapshot_xmin(pg_current_snapshot());
    v_n integer;
BEGIN
    RETURN QUERY
        SELECT m.seq, m.xid::text, 1, m.id, m.source, m.type, m.specversion, m.subject, m."time",
               m.datacontenttype, m.partitionkey, m.headers, m.data
        FROM {s}.messages m
        WHERE m.topic = p_topic AND (m.xid, m.seq) > (p_xid, p_seq) AND m.xid < v_xmin
        ORDER BY m.xid, m.seq LIMIT p_max;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    IF v_n < p_max THEN
        RETURN QUERY
            SELECT NULL::bigint, NULL::text,
                   CASE WHEN EXISTS (SELECT 1 FROM {s}.messages m
                                     WHERE m.topic = p_topic AND (m.xid, m.seq) > (p_xid, p_seq)
                                       AND m.xid >= v_xmin) THEN 1 ELSE 0 END,
                   NULL::text, NULL::text, NULL::text, NULL::text, NULL::text, NULL::timestamptz,
                   NULL::text, NULL::text, NULL::jsonb, NULL::bytea;
    END IF;
END
$$
"#;
