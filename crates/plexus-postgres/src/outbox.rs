//! [`PostgresOutbox`]: the transactional outbox on a PostgreSQL bus's
//! tables.
//!
//! A service writes its own rows and the messages they imply in one
//! transaction of its own: `outbox.publish(&mut tx, topic, &messages)`
//! inserts the messages into the bus's `messages` table on the
//! transaction's connection and queues `pg_notify('<schema>', topic)` in
//! it. PostgreSQL delivers a notification only when its transaction
//! commits, so the messages and the wake-up exist exactly when the
//! caller's transaction commits: a rollback leaves no trace, and a commit
//! wakes every bus listening on the schema (in this process or another),
//! whose consumer groups of `topic` then claim them. A relay is such a
//! group: a [`Forwarder`](https://docs.rs/plexus-bus) on the topic.
//!
//! Transactions commit in another order than they wrote in; the bus
//! orders a topic by the writing transaction's id and only hands out
//! messages of transactions older than every one still running, so a
//! message committed late is never passed over (the crate documentation,
//! "No message passed over").

use plexus_core::Message;
use plexus_core::bus::BusError;
use sqlx::{Postgres, Transaction};

use crate::PostgresConfig;
use crate::bus::publish::{checked, insert};
use crate::bus::statements::{Inserts, Statements};

/// Inserts messages into a PostgreSQL bus's topics inside the caller's own
/// transaction (see the module). Holds the bounds it applies and the
/// statement for the bus's schema; cheap to clone and to keep beside a
/// connection pool.
#[derive(Debug, Clone)]
pub struct PostgresOutbox {
    config: PostgresConfig,
    /// `$1` topic, `$2..$10` the columns, `$11` the schema's channel: the
    /// insert and the notification in one statement.
    sql: Inserts,
    name: String,
}

impl PostgresOutbox {
    /// An outbox for the bus that `config` describes (its schema, and its
    /// bounds: the largest message, the largest batch). The bus's tables
    /// must exist in the transaction's database: open a
    /// [`PostgresBus`](crate::PostgresBus) on it once before the first
    /// publish.
    pub fn new(config: &PostgresConfig) -> Result<Self, BusError> {
        config.check()?;
        Ok(Self::of(config))
    }

    /// An outbox for `bus`'s schema and bounds.
    pub fn for_bus(bus: &crate::PostgresBus) -> Self {
        Self::of(bus.config())
    }

    fn of(config: &PostgresConfig) -> Self {
        let publish = Statements::new(&config.schema).publish;
        PostgresOutbox {
            sql: publish
                .wrapped(|insert| format!("WITH inserted AS ({insert}) SELECT pg_notify($11, $1)")),
            name: format!("postgres outbox (schema {})", config.schema),
            config: config.clone(),
        }
    }

    /// Inserts `messages` into `topic` inside `tx`: they become messages
    /// of the topic when, and only when, `tx` commits, and the commit
    /// wakes the topic's subscribers. One statement, so all or none.
    ///
    /// A refusal of plexus's (a bad topic, a message or batch too large,
    /// a time out of range) is decided before anything is sent and leaves
    /// `tx` as it was. A database error fails the statement, and
    /// PostgreSQL then refuses everything else in `tx` until it is rolled
    /// back, as with any of the caller's own statements.
    pub async fn publish(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        topic: &str,
        messages: &[Message],
    ) -> Result<(), BusError> {
        let Some(columns) = checked(&self.config, &self.name, topic, messages)? else {
            return Ok(());
        };
        insert(&self.sql, topic, &columns)
            .bind(&self.config.schema)
            .execute(&mut **tx)
            .await
            .map_err(|e| {
                BusError::backend(
                    &self.name,
                    format!(
                        "inserting {} messages into topic `{topic}` in the caller's transaction failed: {e}; roll the transaction back, and check that a bus was opened on this database and schema once (its tables exist)",
                        messages.len()
                    ),
                )
            })?;
        Ok(())
    }
}
