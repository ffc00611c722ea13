//! [`SqliteInbox`]: a message's effect applied once, however often the
//! message comes.
//!
//! A handler records the message it handles in the same transaction as
//! its effect: `inbox.process(&mut tx, consumer, &message)` says whether
//! this consumer has seen the message (its CloudEvents `source` and `id`)
//! before. The first time, the handler applies its effect and commits;
//! a redelivery (the ack was lost, a relay published it twice) finds the
//! record, and the handler commits nothing and acks. A transaction rolled
//! back takes its record with it, so the next delivery is a first time
//! again.
//!
//! Records are kept for a dedupe window: [`SqliteInbox::prune`] deletes
//! those older, a bounded number per call, for the caller to run on a
//! schedule. A duplicate arriving after the window is applied again.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use plexus_core::Message;
use plexus_core::bus::{BusError, Seen, check_consumer};
use sqlx::{Sqlite, SqliteConnection, Transaction};

/// The table, created by [`SqliteInbox::install`].
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS plexus_inbox (
    consumer TEXT NOT NULL,
    source TEXT NOT NULL,
    id TEXT NOT NULL,
    seen_ms INTEGER NOT NULL,
    PRIMARY KEY (consumer, source, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS plexus_inbox_seen ON plexus_inbox (seen_ms)";

/// Records, per consumer, the messages whose effects were applied (see
/// the module).
#[derive(Debug, Clone)]
pub struct SqliteInbox {
    window: Duration,
    prune_batch: u32,
}

impl SqliteInbox {
    /// An inbox remembering a message for `window` after it was first
    /// processed; [`prune`](Self::prune) deletes at most 10,000 records a
    /// call.
    pub fn new(window: Duration) -> Self {
        SqliteInbox {
            window,
            prune_batch: 10_000,
        }
    }

    /// The most records one [`prune`](Self::prune) deletes (at least 1).
    pub fn prune_batch(mut self, records: u32) -> Self {
        self.prune_batch = records.max(1);
        self
    }

    /// Creates the inbox's table on `connection` if it is missing.
    pub async fn install(connection: &mut SqliteConnection) -> Result<(), BusError> {
        for statement in SCHEMA.split(';').filter(|s| !s.trim().is_empty()) {
            sqlx::query(statement)
                .execute(&mut *connection)
                .await
                .map_err(|e| error("creating the inbox table", &e))?;
        }
        Ok(())
    }

    /// Records that `consumer` processes `message` inside `tx`, the
    /// transaction of the effect: [`Seen::First`] when it had not (the
    /// record stays only if `tx` commits), [`Seen::Again`] when it had.
    pub async fn process(
        &self,
        tx: &mut Transaction<'_, Sqlite>,
        consumer: &str,
        message: &Message,
    ) -> Result<Seen, BusError> {
        check_consumer(consumer)?;
        let inserted = sqlx::query(
            "INSERT INTO plexus_inbox (consumer, source, id, seen_ms) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT DO NOTHING",
        )
        .bind(consumer)
        .bind(message.source())
        .bind(message.id())
        .bind(now_ms())
        .execute(&mut **tx)
        .await
        .map_err(|e| error("recording a message in the inbox", &e))?;
        Ok(if inserted.rows_affected() == 1 {
            Seen::First
        } else {
            Seen::Again
        })
    }

    /// Deletes at most the batch size of records older than the window;
    /// how many it deleted (fewer than the batch: none older remain).
    pub async fn prune(&self, connection: &mut SqliteConnection) -> Result<u64, BusError> {
        let window = i64::try_from(self.window.as_millis()).unwrap_or(i64::MAX);
        let before = now_ms().saturating_sub(window);
        let deleted = sqlx::query(
            "DELETE FROM plexus_inbox WHERE (consumer, source, id) IN \
             (SELECT consumer, source, id FROM plexus_inbox WHERE seen_ms <= ?1 LIMIT ?2)",
        )
        .bind(before)
        .bind(self.prune_batch)
        .execute(&mut *connection)
        .await
        .map_err(|e| error("pruning the inbox", &e))?;
        Ok(deleted.rows_affected())
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn error(doing: &str, error: &sqlx::Error) -> BusError {
    BusError::backend(
        "SQLite inbox",
        format!("{doing} failed: {error}; check that SqliteInbox::install ran on this database"),
    )
}
