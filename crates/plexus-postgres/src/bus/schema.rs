//! The bus's tables and functions in its schema (`{s}` below), created if
//! missing. This is the contract for clients in other languages too; the
//! [crate documentation](crate) describes it for them.
//!
//! - `messages`: every retained message, its CloudEvents attributes in
//!   columns, headers (extension attributes) in `headers` (JSONB object
//!   of strings), the payload in `data`. `xid` is the publishing
//!   transaction (`pg_current_xact_id()`), `seq` the insertion order.
//! - `groups`: one row per consumer group of a topic. Its cursor
//!   `(cursor_xid, cursor_seq)` is the last message the group took, in
//!   `(xid, seq)` order.
//!   An exclusive group (`exclusive`) has no pending rows: the member
//!   holding it (`holder`, while its session holds the group's advisory
//!   lock) reads after the cursor and moves it as its acks come.
//! - `pending`: the messages a group took and has not acknowledged:
//!   `attempt` (deliveries so far), `due` (when it may be delivered
//!   (again): the ack deadline while leased, the end of a nack's delay,
//!   or the moment it was taken), `owner` (the bus holding its lease).
//!   A row holds the messages `seq..=last_seq` (`last_seq` NULL: `seq`
//!   alone), every seq of them a message the group took together: a claim
//!   of messages without a key is one row per run of consecutive seqs,
//!   not one per message. An ack of part of a run leaves the rest of it;
//!   a nack or a parked message is split out of its run first
//!   (`isolate()`). Messages with a key have a row each.
//!
//! Why `(xid, seq)` and `xid < xmin`: a `seq` is drawn at INSERT but
//! becomes visible at COMMIT, so reading `seq > cursor` could pass over a
//! row whose transaction commits later (the outbox visibility gap). A
//! claim takes only messages of transactions older than every transaction
//! still running (`xid < pg_snapshot_xmin(pg_current_snapshot())`): no
//! such transaction can add a row any more, so the set in `(xid, seq)`
//! order only grows at its end and the cursor never passes a message.

/// The version of the layout below; a database holding another version
/// is set up again (tables are only ever added to).
pub(crate) const VERSION: i32 = 16;

/// Creates the schema, tables and indexes (idempotent): statements
/// separated by `;` and a line break.
pub(crate) const TABLES: &str = r#"
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.meta (
    version integer NOT NULL
);
CREATE TABLE IF NOT EXISTS {s}.messages (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    topic text NOT NULL,
    id text NOT NULL,
    source text NOT NULL,
    type text NOT NULL,
    specversion text NOT NULL DEFAULT '1.0',
    subject text,
    "time" timestamptz NOT NULL DEFAULT now(),
    datacontenttype text,
    partitionkey text,
    headers jsonb NOT NULL DEFAULT '{}',
    data bytea NOT NULL DEFAULT ''::bytea,
    published_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS messages_topic_order ON {s}.messages (topic, xid, seq);
CREATE TABLE IF NOT EXISTS {s}.groups (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic text NOT NULL,
    name text NOT NULL,
    cursor_xid xid8 NOT NULL,
    cursor_seq bigint NOT NULL,
    private boolean NOT NULL DEFAULT false,
    touched timestamptz NOT NULL DEFAULT now(),
    UNIQUE (topic, name)
);
CREATE TABLE IF NOT EXISTS {s}.pending (
    group_id bigint NOT NULL,
    seq bigint NOT NULL,
    xid xid8 NOT NULL,
    partitionkey text,
    attempt integer NOT NULL DEFAULT 0,
    due timestamptz NOT NULL,
    owner text,
    PRIMARY KEY (group_id, seq)
);
ALTER TABLE {s}.pending ADD COLUMN IF NOT EXISTS last_seq bigint;
CREATE INDEX IF NOT EXISTS pending_due ON {s}.pending (group_id, due);
CREATE INDEX IF NOT EXISTS pending_key ON {s}.pending (group_id, partitionkey, xid, seq)
    WHERE partitionkey IS NOT NULL;
ALTER TABLE {s}.groups ADD COLUMN IF NOT EXISTS exclusive boolean NOT NULL DEFAULT false;
ALTER TABLE {s}.groups ADD COLUMN IF NOT EXISTS holder text
"#;

/// `join_group(topic, name, private, earliest)`: the group's id, creating
/// it at the earliest retained message or at new messages (those of
/// transactions that begin writing after it) if missing.
pub(crate) const JOIN_GROUP: &str = r#"
CREATE OR REPLACE FUNCTION {s}.join_group(p_topic text, p_name text, p_private boolean, p_earliest boolean)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
    v_xmax xid8 := pg_snapshot_xmax(pg_current_snapshot());
BEGIN
    INSERT INTO {s}.groups (topic, name, cursor_xid, cursor_seq, private)
    VALUES (p_topic, p_name, CASE WHEN p_earliest THEN '0'::xid8 ELSE v_xmax END, 0, p_private)
    ON CONFLICT (topic, name) DO NOTHING
    RETURNING id INTO v_id;
    IF v_id IS NULL THEN
        SELECT g.id INTO v_id FROM {s}.groups g WHERE g.topic = p_topic AND g.name = p_name;
    END IF;
    RETURN v_id;
END
$$
"#;

/// `claim(group, owner, max, deadline_ms, window)`: leases up to `max`
/// messages to `owner` for `deadline_ms`, returning them with their
/// attempt. First messages that are due (redeliveries, nacked ones whose
/// delay passed, messages released by their key) and are the first of
/// their key in the group, skipping rows another claim locked; then, if
/// there is room and the group holds fewer than `window` messages with a
/// key, new messages after the group's cursor, of transactions older than
/// every running one.
/// A new message is leased at once unless an earlier message of its key is
/// pending (then it waits, taken but unleased). New messages without a key
/// are one `pending` row per run of consecutive seqs (one row for a
/// publisher's batch, not one per message); a due run larger than the
/// room left is split, its head leased.
///
/// When it leases nothing it returns one row with `seq` NULL: `attempt`
/// 1 if committed messages wait behind a running transaction (claim again
/// soon), else 0; `time` the next moment a pending message falls due, if
/// any. Fails with SQLSTATE `PXGON` when the group no longer exists.
pub(crate) const CLAIM: &str = r#"
CREATE OR REPLACE FUNCTION {s}.claim(p_group bigint, p_owner text, p_max integer, p_deadline_ms bigint, p_window integer)
RETURNS TABLE (seq bigint, attempt integer, id text, source text, type text, specversion text, subject text,
               "time" timestamptz, datacontenttype text, partitionkey text, headers jsonb, data bytea)
LANGUAGE plpgsql
-- The tables grow fast and their statistics lag (a fresh topic looks
-- empty): planned for the values at hand, the statements read a topic's
-- new messages with a bitmap scan of all of them and a sort (5 to 10
-- times slower than the index in order, measured).
SET enable_bitmapscan = off
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
    v_xmin xid8;
    v_now timestamptz := clock_timestamp();
    v_until timestamptz := v_now + p_deadline_ms * interval '1 millisecond';
    v_mine bigint[];
    v_lasts bigint[];
    v_attempts integer[];
    v_over boolean;
    v_taken bigint;
    v_split record;
    v_room integer;
    v_topic text;
    v_cursor_xid xid8;
    v_cursor_seq bigint;
    v_touched timestamptz;
    v_held integer;
    v_seqs bigint[];
    v_xids xid8[];
    v_keys text[];
    v_n integer;
    v_behind boolean := false;
    v_unkeyed boolean;
    v_range boolean := false;
BEGIN
    -- A claim need not wait for the disk: lost in a crash, its leases and
    -- cursor step back and the messages are delivered again; an ack
    -- (committed durably) flushes the claim it answers with it.
    PERFORM set_config('synchronous_commit', 'off', true);
    -- Due rows whole, as many as fit in the room.
    WITH picked AS (
        SELECT p.seq, coalesce(p.last_seq, p.seq) AS last_seq FROM {s}.pending p
        WHERE p.group_id = p_group AND p.due <= v_now
          AND (p.partitionkey IS NULL OR NOT EXISTS (
              SELECT 1 FROM {s}.pending q
              WHERE q.group_id = p_group AND q.partitionkey = p.partitionkey
                AND (q.xid, q.seq) < (p.xid, p.seq)))
        LIMIT p_max
        FOR UPDATE OF p SKIP LOCKED
    ), sized AS (
        SELECT picked.seq, sum(picked.last_seq - picked.seq + 1) OVER (ORDER BY picked.seq) AS upto
        FROM picked
    ), leased AS (
        UPDATE {s}.pending p SET due = v_until, attempt = p.attempt + 1, owner = p_owner
        FROM sized WHERE p.group_id = p_group AND p.seq = sized.seq AND sized.upto <= p_max
        RETURNING p.seq, coalesce(p.last_seq, p.seq) AS last_seq, p.attempt
    )
    SELECT coalesce(array_agg(leased.seq), '{}'), coalesce(array_agg(leased.last_seq), '{}'),
           coalesce(array_agg(leased.attempt), '{}'),
           coalesce(sum(leased.last_seq - leased.seq + 1), 0),
           (SELECT bool_or(sized.upto > p_max) FROM sized)
      INTO v_mine, v_lasts, v_attempts, v_taken, v_over FROM leased;
    v_room := p_max - v_taken;
    IF v_over AND v_room > 0 THEN
        -- A due run larger than the room left: its head is leased, the
        -- rest stays due.
        SELECT p.seq, p.last_seq INTO v_split FROM {s}.pending p
        WHERE p.group_id = p_group AND p.due <= v_now AND p.partitionkey IS NULL
          AND p.last_seq - p.seq + 1 > v_room
        LIMIT 1
        FOR UPDATE SKIP LOCKED;
        IF FOUND THEN
            INSERT INTO {s}.pending (group_id, seq, last_seq, xid, partitionkey, attempt, due, owner)
            SELECT p.group_id, v_split.seq + v_room, v_split.last_seq, p.xid, NULL, p.attempt, p.due, p.owner
            FROM {s}.pending p WHERE p.group_id = p_group AND p.seq = v_split.seq;
            UPDATE {s}.pending p SET last_seq = v_split.seq + v_room - 1, due = v_until,
                   attempt = p.attempt + 1, owner = p_owner
             WHERE p.group_id = p_group AND p.seq = v_split.seq;
            v_mine := v_mine || v_split.seq;
            v_lasts := v_lasts || (v_split.seq + v_room - 1);
            v_attempts := v_attempts || (SELECT p.attempt FROM {s}.pending p
                                          WHERE p.group_id = p_group AND p.seq = v_split.seq);
            v_room := 0;
        END IF;
    END IF;
    IF v_room > 0 THEN
        -- One member of a group takes new messages at a time.
        PERFORM pg_advisory_xact_lock(hashtext('{s}.groups'), (p_group % 2147483647)::integer);
        -- Read after the lock: a transaction that committed while this
        -- claim waited for it holds nothing back.
        v_xmin := pg_snapshot_xmin(pg_current_snapshot());
        SELECT g.topic, g.cursor_xid, g.cursor_seq, g.touched
          INTO v_topic, v_cursor_xid, v_cursor_seq, v_touched
          FROM {s}.groups g WHERE g.id = p_group;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'consumer group % no longer exists', p_group USING ERRCODE = 'PXGON';
        END IF;
        -- Messages without a key are leased as they are taken (members
        -- bound those); messages with a key may wait behind their key.
        SELECT count(*) INTO v_held
          FROM (SELECT 1 FROM {s}.pending h
                WHERE h.group_id = p_group AND h.partitionkey IS NOT NULL LIMIT p_window) w;
        v_room := least(v_room, p_window - v_held);
        IF v_room > 0 THEN
            -- The aggregates take the rows in the subquery's order.
            SELECT array_agg(n.seq), array_agg(n.xid), array_agg(n.partitionkey),
                   bool_and(n.partitionkey IS NULL)
              INTO v_seqs, v_xids, v_keys, v_unkeyed
              FROM (SELECT m.seq, m.xid, m.partitionkey FROM {s}.messages m
                    WHERE m.topic = v_topic AND (m.xid, m.seq) > (v_cursor_xid, v_cursor_seq)
                      AND m.xid < v_xmin
                    ORDER BY m.xid, m.seq LIMIT v_room) n;
            v_n := coalesce(cardinality(v_seqs), 0);
        ELSE
            v_n := 0;
        END IF;
        IF v_n > 0 AND v_unkeyed THEN
            -- No keys: every message taken is leased here, one row per
            -- run of consecutive seqs, and is read back below by its
            -- range (no transaction can add to it).
            INSERT INTO {s}.pending (group_id, seq, last_seq, xid, partitionkey, attempt, due, owner)
            SELECT p_group, min(r.seq), max(r.seq), (array_agg(r.xid ORDER BY r.seq))[1], NULL, 1, v_until, p_owner
            FROM (SELECT u.seq, u.xid, u.seq - row_number() OVER (ORDER BY u.seq) AS island
                  FROM unnest(v_seqs, v_xids) AS u(seq, xid)) r
            GROUP BY r.island;
            v_range := true;
        ELSIF v_n > 0 THEN
            WITH taken AS (
                SELECT u.seq, u.xid, u.key, u.n
                FROM unnest(v_seqs, v_xids, v_keys) WITH ORDINALITY AS u(seq, xid, key, n)
            ), decided AS (
                SELECT t.seq, t.xid, t.key,
                       (t.key IS NULL OR (t.n = min(t.n) OVER (PARTITION BY t.key)
                         AND NOT EXISTS (SELECT 1 FROM {s}.pending q
                                         WHERE q.group_id = p_group AND q.partitionkey = t.key))) AS mine
                FROM taken t
            ), inserted AS (
                INSERT INTO {s}.pending (group_id, seq, xid, partitionkey, attempt, due, owner)
                SELECT p_group, d.seq, d.xid, d.key,
                       CASE WHEN d.mine THEN 1 ELSE 0 END,
                       CASE WHEN d.mine THEN v_until ELSE v_now END,
                       CASE WHEN d.mine THEN p_owner END
                FROM decided d
                RETURNING pending.seq, pending.attempt
            )
            SELECT v_mine || coalesce(array_agg(i.seq) FILTER (WHERE i.attempt = 1), '{}'),
                   v_lasts || coalesce(array_agg(i.seq) FILTER (WHERE i.attempt = 1), '{}'),
                   v_attempts || coalesce(array_agg(i.attempt) FILTER (WHERE i.attempt = 1), '{}')
              INTO v_mine, v_lasts, v_attempts FROM inserted i;
        END IF;
        IF v_n > 0 THEN
            UPDATE {s}.groups g SET cursor_xid = v_xids[v_n], cursor_seq = v_seqs[v_n], touched = v_now
             WHERE g.id = p_group;
        ELSE
            IF v_touched < v_now - interval '60 seconds' THEN
                UPDATE {s}.groups g SET touched = v_now WHERE g.id = p_group;
            END IF;
            -- Committed messages a running older transaction holds back.
            SELECT EXISTS (SELECT 1 FROM {s}.messages m
                           WHERE m.topic = v_topic AND (m.xid, m.seq) > (v_cursor_xid, v_cursor_seq)
                             AND m.xid >= v_xmin)
              INTO v_behind;
        END IF;
    END IF;

    IF cardinality(v_mine) = 0 AND NOT v_range THEN
        RETURN QUERY
            SELECT NULL::bigint, CASE WHEN v_behind THEN 1 ELSE 0 END, NULL::text, NULL::text, NULL::text,
                   NULL::text, NULL::text,
                   (SELECT min(p.due) FROM {s}.pending p WHERE p.group_id = p_group AND p.due > v_now),
                   NULL::text, NULL::text, NULL::jsonb, NULL::bytea;
        RETURN;
    END IF;
    RETURN QUERY
        SELECT m.seq, c.attempt, m.id, m.source, m.type, m.specversion, m.subject, m."time",
               m.datacontenttype, m.partitionkey, m.headers, m.data
        -- Each row's messages through the index (joined on the range, a
        -- generic plan scanned all of `messages` for them: 50 ms a claim
        -- with 43,000 messages kept).
        FROM unnest(v_mine, v_lasts, v_attempts) AS c(first_seq, last_seq, attempt)
        CROSS JOIN LATERAL (
            SELECT * FROM {s}.messages r
            WHERE r.seq BETWEEN c.first_seq AND c.last_seq
            ORDER BY r.seq LIMIT c.last_seq - c.first_seq + 1) m
        ORDER BY m.xid, m.seq;
    IF v_range THEN
        RETURN QUERY
            SELECT m.seq, 1, m.id, m.source, m.type, m.specversion, m.subject, m."time",
                   m.datacontenttype, m.partitionkey, m.headers, m.data
            FROM {s}.messages m
            WHERE m.topic = v_topic AND (m.xid, m.seq) > (v_cursor_xid, v_cursor_seq)
              AND (m.xid, m.seq) <= (v_xids[v_n], v_seqs[v_n]) AND m.xid < v_xmin
            ORDER BY m.xid, m.seq LIMIT v_n;
    END IF;
END
$$
"#;

/// `ack(groups, firsts, lasts, attempts)`: for each `i`, the messages
/// `firsts[i]..=lasts[i]` of group `groups[i]` still in attempt
/// `attempts[i]` are acknowledged (a range whose every message was
/// acknowledged in that attempt): rows wholly inside a range are deleted,
/// runs partly inside one keep the rest in pieces. Hash and merge joins
/// are off: planned for a small table, they read all of `pending` once per
/// call (measured: 80 ms a call with 300,000 rows pending, 0.7 ms with the
/// index).
pub(crate) const ACK: &str = r#"
CREATE OR REPLACE FUNCTION {s}.ack(p_groups bigint[], p_firsts bigint[], p_lasts bigint[], p_attempts integer[])
RETURNS void LANGUAGE plpgsql
SET enable_hashjoin = off
SET enable_mergejoin = off
SET enable_seqscan = off
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_part record;
    v_run record;
    v_acked record;
    v_from bigint;
    v_gone_groups bigint[];
    v_gone_firsts bigint[];
    v_gone_lasts bigint[];
    v_groups bigint[];
    v_firsts bigint[];
    v_lasts bigint[];
    v_attempts integer[];
    v_rows tid[];
BEGIN
    -- The rows in each range, found through the primary key in its order
    -- and locked, then deleted by their row ids: joined on `group_id`
    -- alone, a generic plan took the `pending_due` index and filtered a
    -- group's every row per range (25 ms for 500 acks, measured).
    SELECT coalesce(array_agg(r.ctid), '{}') INTO v_rows
    FROM unnest(p_groups, p_firsts, p_lasts, p_attempts) AS a(g, first_seq, last_seq, attempt)
    CROSS JOIN LATERAL (
        SELECT q.ctid FROM {s}.pending q
        WHERE q.group_id = a.g AND q.seq >= a.first_seq AND q.seq <= a.last_seq
          AND coalesce(q.last_seq, q.seq) <= a.last_seq AND q.attempt = a.attempt
        ORDER BY q.group_id, q.seq
        FOR UPDATE) r;
    WITH gone AS (
        DELETE FROM {s}.pending p WHERE p.ctid = ANY (v_rows)
        RETURNING p.group_id, p.seq, coalesce(p.last_seq, p.seq) AS last_seq
    )
    SELECT coalesce(array_agg(gone.group_id), '{}'), coalesce(array_agg(gone.seq), '{}'),
           coalesce(array_agg(gone.last_seq), '{}')
      INTO v_gone_groups, v_gone_firsts, v_gone_lasts FROM gone;
    -- A range that begins where a deleted row began and ends where one
    -- ended is done: rows do not overlap, so none reaches into it from
    -- outside. The others (a part of a run acknowledged) are looked at
    -- below. Looking at every range there walks, for each, back over the
    -- index entries this call just deleted (dead, not yet reclaimable):
    -- 500 acks of keyed messages took 50 to 90 ms, measured. Only arrays
    -- are joined here, so a hash join reads no table.
    PERFORM set_config('enable_hashjoin', 'on', true);
    SELECT coalesce(array_agg(a.g), '{}'), coalesce(array_agg(a.first_seq), '{}'),
           coalesce(array_agg(a.last_seq), '{}'), coalesce(array_agg(a.attempt), '{}')
      INTO v_groups, v_firsts, v_lasts, v_attempts
      FROM unnest(p_groups, p_firsts, p_lasts, p_attempts) AS a(g, first_seq, last_seq, attempt)
     WHERE NOT EXISTS (SELECT 1 FROM unnest(v_gone_groups, v_gone_firsts) AS b(g, seq)
                       WHERE b.g = a.g AND b.seq = a.first_seq)
        OR NOT EXISTS (SELECT 1 FROM unnest(v_gone_groups, v_gone_lasts) AS e(g, last_seq)
                       WHERE e.g = a.g AND e.last_seq = a.last_seq);
    PERFORM set_config('enable_hashjoin', 'off', true);
    IF cardinality(v_groups) = 0 THEN
        RETURN;
    END IF;
    -- Runs do not overlap within a group: one reaching into a range
    -- starts last before its end or last before its start.
    FOR v_part IN
        SELECT DISTINCT c.group_id, c.seq
        FROM unnest(v_groups, v_firsts, v_lasts, v_attempts) AS a(g, first_seq, last_seq, attempt)
        CROSS JOIN LATERAL (
            (SELECT q.group_id, q.seq, q.last_seq, q.attempt FROM {s}.pending q
             WHERE q.group_id = a.g AND q.seq <= a.last_seq ORDER BY q.seq DESC LIMIT 1)
            UNION ALL
            (SELECT q.group_id, q.seq, q.last_seq, q.attempt FROM {s}.pending q
             WHERE q.group_id = a.g AND q.seq < a.first_seq ORDER BY q.seq DESC LIMIT 1)
        ) c
        WHERE c.attempt = a.attempt AND c.last_seq > c.seq
          AND c.seq <= a.last_seq AND c.last_seq >= a.first_seq
    LOOP
        DELETE FROM {s}.pending p WHERE p.group_id = v_part.group_id AND p.seq = v_part.seq
        RETURNING p.* INTO v_run;
        CONTINUE WHEN NOT FOUND;
        v_from := v_run.seq;
        FOR v_acked IN
            SELECT a.first_seq, a.last_seq
            FROM unnest(v_groups, v_firsts, v_lasts, v_attempts) AS a(g, first_seq, last_seq, attempt)
            WHERE a.g = v_run.group_id AND a.attempt = v_run.attempt
              AND a.last_seq >= v_run.seq AND a.first_seq <= v_run.last_seq
            ORDER BY a.first_seq
        LOOP
            IF v_acked.first_seq > v_from THEN
                INSERT INTO {s}.pending (group_id, seq, last_seq, xid, partitionkey, attempt, due, owner)
                VALUES (v_run.group_id, v_from, v_acked.first_seq - 1, v_run.xid, NULL,
                        v_run.attempt, v_run.due, v_run.owner);
            END IF;
            v_from := greatest(v_from, v_acked.last_seq + 1);
        END LOOP;
        IF v_from <= v_run.last_seq THEN
            INSERT INTO {s}.pending (group_id, seq, last_seq, xid, partitionkey, attempt, due, owner)
            VALUES (v_run.group_id, v_from, v_run.last_seq, v_run.xid, NULL,
                    v_run.attempt, v_run.due, v_run.owner);
        END IF;
    END LOOP;
END
$$
"#;

/// `isolate(group, seq)`: the message `seq` of `group`, if part of a
/// longer run, gets a row of its own (the run's other messages keep
/// theirs, in pieces), so that it can be answered on its own.
pub(crate) const ISOLATE: &str = r#"
CREATE OR REPLACE FUNCTION {s}.isolate(p_group bigint, p_seq bigint)
RETURNS void LANGUAGE plpgsql
SET enable_seqscan = off
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_run record;
BEGIN
    SELECT p.seq, p.last_seq INTO v_run FROM {s}.pending p
    WHERE p.group_id = p_group AND p.seq <= p_seq ORDER BY p.seq DESC LIMIT 1;
    IF NOT FOUND OR v_run.last_seq IS NULL OR v_run.last_seq = v_run.seq OR v_run.last_seq < p_seq THEN
        RETURN;
    END IF;
    DELETE FROM {s}.pending p WHERE p.group_id = p_group AND p.seq = v_run.seq
    RETURNING p.* INTO v_run;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    INSERT INTO {s}.pending (group_id, seq, last_seq, xid, partitionkey, attempt, due, owner)
    SELECT p_group, b.first_seq, b.last_seq, v_run.xid, NULL, v_run.attempt, v_run.due, v_run.owner
    FROM (VALUES (v_run.seq, p_seq - 1), (p_seq, p_seq), (p_seq + 1, v_run.last_seq))
         AS b(first_seq, last_seq)
    WHERE b.first_seq <= b.last_seq;
END
$$
"#;

/// `nack(groups, seqs, attempts, delays_ms)`: the messages
/// `(groups[i], seqs[i])` still in attempt `attempts[i]` fall due after
/// `delays_ms[i]`, unleased (split out of their runs first); planned as
/// `ack()`, through the index.
pub(crate) const NACK: &str = r#"
CREATE OR REPLACE FUNCTION {s}.nack(p_groups bigint[], p_seqs bigint[], p_attempts integer[], p_delays bigint[])
RETURNS void LANGUAGE plpgsql
SET enable_hashjoin = off
SET enable_mergejoin = off
SET enable_seqscan = off
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    FOR i IN 1 .. coalesce(cardinality(p_groups), 0) LOOP
        PERFORM {s}.isolate(p_groups[i], p_seqs[i]);
    END LOOP;
    UPDATE {s}.pending p SET due = clock_timestamp() + a.delay * interval '1 millisecond', owner = NULL
    FROM unnest(p_groups, p_seqs, p_attempts, p_delays) AS a(g, seq, attempt, delay)
    WHERE p.group_id = a.g AND p.seq = a.seq AND p.attempt = a.attempt;
END
$$
"#;

/// `park(group, seq)`: the message waits, unleased and never due, until
/// someone repairs it and sets its `due` (split out of its run first).
pub(crate) const PARK: &str = r#"
CREATE OR REPLACE FUNCTION {s}.park(p_group bigint, p_seq bigint)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM {s}.isolate(p_group, p_seq);
    UPDATE {s}.pending p SET due = 'infinity', owner = NULL WHERE p.group_id = p_group AND p.seq = p_seq;
END
$$
"#;

/// `prune(max_age_ms, private_expiry_ms, batch)`: deletes up to `batch`
/// messages per topic that every group of the topic has taken and
/// acknowledged, up to `batch` messages older than `max_age_ms` (with
/// their pending rows), and private groups untouched for
/// `private_expiry_ms`. Returns the messages deleted; does nothing while
/// another bus prunes the same schema.
pub(crate) const PRUNE: &str = r#"
CREATE OR REPLACE FUNCTION {s}.prune(p_max_age_ms bigint, p_private_expiry_ms bigint, p_batch integer)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_deleted bigint := 0;
    v_n bigint;
    v_last bigint;
    v_group record;
    v_floor bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('{s}.prune')) THEN
        RETURN 0;
    END IF;
    WITH expired AS (
        DELETE FROM {s}.groups g
        WHERE g.private AND g.touched < clock_timestamp() - p_private_expiry_ms * interval '1 millisecond'
        RETURNING g.id
    )
    DELETE FROM {s}.pending p USING expired e WHERE p.group_id = e.id;

    FOR v_group IN
        SELECT DISTINCT ON (g.topic) g.topic, g.cursor_xid, g.cursor_seq
        FROM {s}.groups g ORDER BY g.topic, g.cursor_xid, g.cursor_seq
    LOOP
        -- Pending in no group: below the first pending row of every
        -- group of the topic (rows are runs from `seq` up). Looked up
        -- once per topic: a check per message walked back over the
        -- index entries of acknowledged rows, ~140 µs a message.
        SELECT min(f.seq) INTO v_floor
          FROM {s}.groups g
          CROSS JOIN LATERAL (SELECT p.seq FROM {s}.pending p
                              WHERE p.group_id = g.id ORDER BY p.seq LIMIT 1) f
         WHERE g.topic = v_group.topic;
        DELETE FROM {s}.messages m WHERE m.seq IN (
            SELECT o.seq FROM {s}.messages o
            WHERE o.topic = v_group.topic AND (o.xid, o.seq) <= (v_group.cursor_xid, v_group.cursor_seq)
              AND (v_floor IS NULL OR o.seq < v_floor)
            ORDER BY o.xid, o.seq LIMIT p_batch);
        GET DIAGNOSTICS v_n = ROW_COUNT;
        v_deleted := v_deleted + v_n;
    END LOOP;

    WITH old AS (
        DELETE FROM {s}.messages m
        WHERE m.seq IN (SELECT o.seq FROM {s}.messages o ORDER BY o.seq LIMIT p_batch)
          AND m.published_at < clock_timestamp() - p_max_age_ms * interval '1 millisecond'
        RETURNING m.seq
    )
    SELECT count(*), max(old.seq) INTO v_n, v_last FROM old;
    IF v_last IS NOT NULL THEN
        -- Rows none of whose messages is left.
        DELETE FROM {s}.pending p
        WHERE p.seq <= v_last
          AND NOT EXISTS (SELECT 1 FROM {s}.messages m
                          WHERE m.seq BETWEEN p.seq AND coalesce(p.last_seq, p.seq)
                          ORDER BY m.seq LIMIT 1);
    END IF;
    RETURN v_deleted + v_n;
END
$$
"#;
