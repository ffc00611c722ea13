//! The database: connection settings and the tables of the bus.
//!
//! - `plexus_topics`: one row per topic, with the number of messages it
//!   retains (`retained`, for the capacity bound).
//! - `plexus_messages`: every retained message, all of its attributes in
//!   columns; `seq` (AUTOINCREMENT, never reused) orders a topic. SQLite
//!   has one writer at a time, so a message committed later always has a
//!   higher `seq`: a group's cursor never skips one.
//! - `plexus_groups`: one row per consumer group of a topic: `cursor`, the
//!   highest `seq` the group has taken from the topic.
//! - `plexus_pending`: the messages a group has taken and not acknowledged
//!   (but for those of runs, below):
//!   `attempt` (deliveries so far) and `due_ms`, the wall-clock millisecond
//!   from which it may be delivered (again): 0 when free, the ack deadline
//!   while out with a member, the end of a nack's delay, `i64::MAX` while
//!   it waits for an earlier message of its key (whose ack frees it); `owner`, the bus
//!   instance a lease is out with (so that closing the bus returns its
//!   leases at once). Indexed by `due_ms` too, so a claim finds the free
//!   ones without reading the leased ones.
//! - `plexus_runs`: new messages without a key that one claim leased
//!   together, one row for the lot (a row per message would cost as
//!   much again as storing the message): the group's messages of the
//!   topic without a key from `first_seq` to `last_seq`, leased to `owner`
//!   until `due_ms`; `remaining` of them unacknowledged, the first of
//!   those `low_seq`, `acked` the JSON list of the acknowledged ones past
//!   it. The row goes when the last is acknowledged; anything
//!   else that happens to one of them (its lease runs out, a nack, the
//!   bus closing) first turns the run's unacknowledged messages into
//!   `plexus_pending` rows ("explodes" it).
//! - `plexus_outbox`: messages that services' transactions wrote
//!   ([`SqliteOutbox`](crate::SqliteOutbox)) and the bus's writer has not
//!   yet moved into their topics: the topic's name and the message's
//!   columns. Only the rowid orders it (commit order: one writer at a
//!   time), with no index and no AUTOINCREMENT, so that a service's
//!   transaction writes one row and nothing else.

use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection};

use crate::SqliteConfig;

/// The tables and indexes, created if missing.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS plexus_topics (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    retained INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS plexus_messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic_id INTEGER NOT NULL,
    id TEXT NOT NULL,
    source TEXT NOT NULL,
    type TEXT NOT NULL,
    subject TEXT,
    time_s INTEGER NOT NULL,
    time_ns INTEGER NOT NULL,
    datacontenttype TEXT,
    key TEXT,
    headers TEXT,
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS plexus_messages_topic ON plexus_messages (topic_id, seq);
CREATE TABLE IF NOT EXISTS plexus_groups (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    cursor INTEGER NOT NULL,
    private INTEGER NOT NULL DEFAULT 0,
    touched_ms INTEGER NOT NULL,
    UNIQUE (topic_id, name)
);
CREATE TABLE IF NOT EXISTS plexus_pending (
    group_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    key TEXT,
    attempt INTEGER NOT NULL,
    due_ms INTEGER NOT NULL,
    owner INTEGER,
    PRIMARY KEY (group_id, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS plexus_pending_key ON plexus_pending (group_id, key, seq)
    WHERE key IS NOT NULL;
CREATE INDEX IF NOT EXISTS plexus_pending_due ON plexus_pending (group_id, due_ms);
CREATE TABLE IF NOT EXISTS plexus_runs (
    group_id INTEGER NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    low_seq INTEGER NOT NULL,
    remaining INTEGER NOT NULL,
    acked TEXT NOT NULL DEFAULT '[]',
    due_ms INTEGER NOT NULL,
    owner INTEGER NOT NULL,
    PRIMARY KEY (group_id, first_seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS plexus_outbox (
    topic TEXT NOT NULL,
    id TEXT NOT NULL,
    source TEXT NOT NULL,
    type TEXT NOT NULL,
    subject TEXT,
    time_s INTEGER NOT NULL,
    time_ns INTEGER NOT NULL,
    datacontenttype TEXT,
    key TEXT,
    headers TEXT,
    payload BLOB NOT NULL
);
";

/// Opens (creating if missing) the database of `config` with the bus's
/// settings: WAL journal, `synchronous=FULL` (a commit is on disk before it
/// returns), the busy timeout; then creates the tables.
pub(crate) async fn open(config: &SqliteConfig) -> Result<SqliteConnection, sqlx::Error> {
    let mut connection = options(config).connect().await?;
    for statement in SCHEMA.split(';').filter(|s| !s.trim().is_empty()) {
        sqlx::query(statement).execute(&mut connection).await?;
    }
    Ok(connection)
}

/// A further connection to the database of `config` (its tables exist),
/// whose commits need not wait for the disk (`synchronous=NORMAL`): for
/// writes a crash may undo without harm.
pub(crate) async fn connect_relaxed(
    config: &SqliteConfig,
) -> Result<SqliteConnection, sqlx::Error> {
    options(config)
        .synchronous(SqliteSynchronous::Normal)
        .connect()
        .await
}

fn options(config: &SqliteConfig) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(&config.path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(config.busy_timeout)
        .statement_cache_capacity(256)
        .pragma("temp_store", "memory")
}

/// Closes `connection`, giving it at most `limit`.
pub(crate) async fn close(connection: SqliteConnection, limit: Duration) {
    if let Ok(Err(error)) = tokio::time::timeout(limit, connection.close()).await {
        tracing::warn!(%error, "closing the SQLite bus connection failed");
    }
}

#[cfg(test)]
mod tests {
    use crate::SqliteConfig;

    #[tokio::test]
    async fn the_connection_is_durable_wal_with_full_sync() {
        let dir = tempfile::tempdir().unwrap();
        let config = SqliteConfig::new(dir.path().join("bus.db"));
        let mut connection = super::open(&config).await.unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut connection)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut connection)
            .await
            .unwrap();
        assert_eq!(synchronous, 2, "FULL");
        let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(&mut connection)
            .await
            .unwrap();
        assert_eq!(busy, 5000);
        super::close(connection, config.busy_timeout).await;
    }
}
