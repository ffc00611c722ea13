//! The statements the bus runs, with its schema filled in. sqlx prepares
//! each once per connection and reuses it.

/// Every statement of a bus, for its schema.
#[derive(Debug)]
pub(crate) struct Statements {
    /// The schema, quoted.
    pub(crate) schema: String,
    /// The INSERT of a publish (see [`Inserts`]).
    pub(crate) publish: Inserts,
    /// `$1` group ids, `$2` first and `$3` last seqs, `$4` attempts:
    /// deletes the pending rows of each range still in that attempt.
    pub(crate) ack: String,
    /// `$1` group ids, `$2` seqs, `$3` attempts, `$4` delays in
    /// milliseconds: the pending rows still in that attempt fall due then.
    pub(crate) nack: String,
    /// `$1` topic, `$2` group, `$3` private, `$4` from the earliest: the
    /// group's id and whether it is exclusive.
    pub(crate) join: String,
    /// `$1` group, `$2` holder: takes an exclusive group (or makes a
    /// group no shared member took messages of exclusive); its cursor.
    pub(crate) hold: String,
    /// `$1` group, `$2` holder: lets the group go.
    pub(crate) let_go: String,
    /// `$1` group, `$2` xid, `$3` seq, `$4` holder: moves an
    /// exclusive group's cursor while `$4` holds it.
    pub(crate) advance: String,
    /// `$1` topic, `$2` xid, `$3` seq, `$4` max: up to `max`
    /// messages of the topic after `(xid, seq)`, of transactions older
    /// than every running one, in `(xid, seq)` order (see the schema's
    /// module on why), in the columns [`row::decode`](super::row::decode)
    /// reads (`attempt` 1) and then their `xid`: an exclusive group's
    /// next messages.
    pub(crate) read_after: String,
    /// `$1` topic, `$2` xid, `$3` seq: whether committed messages
    /// after `(xid, seq)` wait behind a running transaction.
    pub(crate) held_back: String,
    /// `$1` group, `$2` owner, `$3` max, `$4` deadline ms, `$5` window.
    pub(crate) claim: String,
    /// `$1` group: removes a private group and its pending rows.
    pub(crate) leave: String,
    /// `$1` owner: its leases fall due now.
    pub(crate) release: String,
    /// `$1` group, `$2` seq: the row waits until someone repairs it.
    pub(crate) park: String,
    /// `$1` max age ms, `$2` private group expiry ms, `$3` batch.
    pub(crate) prune: String,
    /// `$1` channel, `$2` topics: one notification each, committed
    /// without waiting for the disk.
    pub(crate) notify: &'static str,
}

impl Statements {
    /// The statements for `schema` (already checked to be a plain
    /// identifier).
    pub(crate) fn new(schema: &str) -> Self {
        let s = format!("\"{schema}\"");
        let fill = |sql: &str| sql.replace("{s}", &s);
        Statements {
            publish: Inserts {
                one: fill(&format!(
                    "{INSERT_INTO} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, coalesce($9::jsonb, '{{}}'), $10)"
                )),
                many: fill(&format!(
                    "{INSERT_INTO} \
                     SELECT $1, u.id, u.source, u.type, u.subject, u.t, u.ct, u.key, coalesce(u.headers::jsonb, '{{}}'), u.data \
                     FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::text[], $8::text[], $9::text[], $10::bytea[]) \
                     WITH ORDINALITY AS u(id, source, type, subject, t, ct, key, headers, data, n) ORDER BY u.n"
                )),
            },
            ack: fill("SELECT {s}.ack($1, $2, $3, $4)"),
            nack: fill("SELECT {s}.nack($1, $2, $3, $4)"),
            join: fill(
                // A group the call made is not in the statement's
                // snapshot: it is new, so not exclusive.
                "SELECT j.id, coalesce(g.exclusive, false) FROM {s}.join_group($1, $2, $3, $4) AS j(id) \
                 LEFT JOIN {s}.groups g ON g.id = j.id",
            ),
            hold: fill(
                "UPDATE {s}.groups g SET holder = $2, exclusive = true, touched = now() \
                 WHERE g.id = $1 AND (g.exclusive OR NOT EXISTS \
                     (SELECT 1 FROM {s}.pending p WHERE p.group_id = $1)) \
                 RETURNING g.cursor_xid::text::bigint, g.cursor_seq",
            ),
            let_go: fill("UPDATE {s}.groups SET holder = NULL WHERE id = $1 AND holder = $2"),
            advance: fill(
                "UPDATE {s}.groups SET cursor_xid = $2::bigint::text::xid8, cursor_seq = $3, touched = now() \
                 WHERE id = $1 AND holder = $4",
            ),
            read_after: fill(
                "SELECT m.seq, 1 AS attempt, m.id, m.source, m.type, m.specversion, \
                 m.subject, m.\"time\", m.datacontenttype, m.partitionkey, m.headers, m.data, \
                 m.xid::text::bigint AS xid \
                 FROM {s}.messages m \
                 WHERE m.topic = $1 AND (m.xid, m.seq) > ($2::bigint::text::xid8, $3) \
                   AND m.xid < pg_snapshot_xmin(pg_current_snapshot()) \
                 ORDER BY m.xid, m.seq LIMIT $4",
            ),
            held_back: fill(
                "SELECT EXISTS (SELECT 1 FROM {s}.messages m \
                 WHERE m.topic = $1 AND (m.xid, m.seq) > ($2::bigint::text::xid8, $3) \
                   AND m.xid >= pg_snapshot_xmin(pg_current_snapshot()))",
            ),
            claim: fill("SELECT * FROM {s}.claim($1, $2, $3, $4, $5)"),
            leave: fill(
                "WITH gone AS (DELETE FROM {s}.groups WHERE id = $1 AND private RETURNING id) \
                 DELETE FROM {s}.pending p USING gone WHERE p.group_id = gone.id",
            ),
            release: fill(
                "UPDATE {s}.pending SET due = clock_timestamp(), owner = NULL WHERE owner = $1",
            ),
            park: fill("SELECT {s}.park($1, $2)"),
            prune: fill("SELECT {s}.prune($1, $2, $3)"),
            notify: "SELECT pg_notify($1, t) \
                     FROM set_config('synchronous_commit', 'off', true) AS c, unnest($2::text[]) AS t",
            schema: s,
        }
    }

    /// A setup statement with the schema filled in.
    pub(crate) fn setup(&self, sql: &str) -> String {
        sql.replace("{s}", &self.schema)
    }
}

/// The head of both forms of [`Inserts`]: the table and the columns they
/// fill, in the order of their parameters.
const INSERT_INTO: &str = "INSERT INTO {s}.messages \
     (topic, id, source, type, subject, \"time\", datacontenttype, partitionkey, headers, data)";

/// The INSERT of a publish, in two forms with the same parameters by
/// position: `$1` the topic, `$2..$10` the columns (id, source, type,
/// subject, time, content type, key, headers, data).
#[derive(Debug, Clone)]
pub(crate) struct Inserts {
    /// One message: one row of values, a value per column.
    pub(crate) one: String,
    /// Any number: one array per column, `unnest`ed in order. For a
    /// single message this form took about 0.11 ms more than `one` here
    /// (prepared, inside a transaction; EXPLAIN ANALYZE shows both its
    /// planning and its execution slower), which a transaction writing
    /// one event through the outbox pays in full.
    pub(crate) many: String,
}

impl Inserts {
    /// Both forms, each inside `wrap` (a statement around the INSERT).
    pub(crate) fn wrapped(&self, wrap: impl Fn(&str) -> String) -> Inserts {
        Inserts {
            one: wrap(&self.one),
            many: wrap(&self.many),
        }
    }
}
