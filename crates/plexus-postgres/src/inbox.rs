//! [`PostgresInbox`]: a message's effect applied once, however often the
//! message comes.
//!
//! A handler records the message it handles in the same transaction as
//! its effect: `inbox.process(&mut tx, consumer, &message)` says whether
//! this consumer has processed the message (its CloudEvents `source` and
//! `id`) before. The first time ([`Seen::First`]) the handler applies its
//! effect and commits; a redelivery (an ack lost, a relay publishing
//! again after a crash) finds the record ([`Seen::Again`]), and the
//! handler commits nothing and acks. A transaction rolled back takes its
//! record with it, so the next delivery is a first time again. Two
//! deliveries of one message processed at once by two members: the
//! second insert waits for the first transaction and then finds its
//! record (or, if it rolled back, takes its place).
//!
//! The table `plexus_inbox` lives in the service's own database (any
//! database, not only a bus's), in the connection's current schema;
//! [`PostgresInbox::install`] creates it. Records are kept for a dedupe
//! window: [`PostgresInbox::prune`] deletes those older, a bounded number
//! per call, for the caller to run on a schedule. A duplicate arriving
//! after the window is applied again.

use std::time::Duration;

use plexus_core::Message;
use plexus_core::bus::{BusError, Seen, check_consumer};
use sqlx::{PgConnection, Postgres, Transaction};

/// The table, created by [`PostgresInbox::install`].
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS plexus_inbox (
    consumer text NOT NULL,
    source text NOT NULL,
    id text NOT NULL,
    seen_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (consumer, source, id)
);
CREATE INDEX IF NOT EXISTS plexus_inbox_seen ON plexus_inbox (seen_at)";

/// Records, per consumer, the messages whose effects were applied (see
/// the module).
#[derive(Debug, Clone)]
pub struct PostgresInbox {
    window: Duration,
    prune_batch: u32,
}

impl PostgresInbox {
    /// An inbox remembering a message for `window` after it was first
    /// processed; [`prune`](Self::prune) deletes at most 10,000 records a
    /// call.
    pub fn new(window: Duration) -> Self {
        PostgresInbox {
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
    pub async fn install(connection: &mut PgConnection) -> Result<(), BusError> {
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
        tx: &mut Transaction<'_, Postgres>,
        consumer: &str,
        message: &Message,
    ) -> Result<Seen, BusError> {
        check_consumer(consumer)?;
        let inserted = sqlx::query(
            "INSERT INTO plexus_inbox (consumer, source, id) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(consumer)
        .bind(message.source())
        .bind(message.id())
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
    pub async fn prune(&self, connection: &mut PgConnection) -> Result<u64, BusError> {
        let window = i64::try_from(self.window.as_micros()).unwrap_or(i64::MAX);
        let deleted = sqlx::query(
            "DELETE FROM plexus_inbox WHERE ctid = ANY (ARRAY( \
             SELECT ctid FROM plexus_inbox \
             WHERE seen_at <= clock_timestamp() - $1 * interval '1 microsecond' LIMIT $2))",
        )
        .bind(window)
        .bind(i64::from(self.prune_batch))
        .execute(&mut *connection)
        .await
        .map_err(|e| error("pruning the inbox", &e))?;
        Ok(deleted.rows_affected())
    }
}

fn error(doing: &str, error: &sqlx::Error) -> BusError {
    BusError::backend(
        "PostgreSQL inbox",
        format!(
            "{doing} failed: {error}; check that PostgresInbox::install ran on this database and schema"
        ),
    )
}
