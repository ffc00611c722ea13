//! [`SqliteOutbox`]: the transactional outbox on a SQLite bus's database.
//!
//! A service writes its own rows and the messages they imply in one
//! transaction of its own: `outbox.publish(&mut tx, topic, messages)`
//! appends the messages to the bus's tables on the transaction's
//! connection, so they exist exactly when the transaction commits. A
//! rollback leaves no trace; a commit makes them messages of `topic` like
//! any other, delivered to its consumer groups, which is how a relay takes
//! them to another broker. SQLite has one writer at a time, so messages of
//! transactions that commit later take higher seqs: consumers see them in
//! commit order.
//!
//! A bus in the same process learns of them at once when the transaction
//! is committed through [`SqliteOutbox::commit`] (an outbox made
//! [`for_bus`](SqliteOutbox::for_bus)); otherwise within
//! [`SqliteConfig::poll_interval`](crate::SqliteConfig::poll_interval), as
//! it learns of another process's writes.
//!
//! Begin the transaction with [`SqliteOutbox::begin`]: it waits its turn
//! among this process's writers of the database, the bus's own included,
//! and then takes the write lock (`BEGIN IMMEDIATE`), so that the
//! service's transactions and the relay's claims and acks follow each
//! other instead of meeting in SQLite's busy handler, which sleeps up to
//! 100 ms between tries. While such a transaction is open, the bus waits:
//! do not wait on the bus (a publish, an ack) inside it.

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};
use std::sync::LazyLock;

use plexus_core::Message;
use plexus_core::bus::{BusError, check_topic, message_size};
use sqlx::{Connection, Sqlite, SqliteConnection, SqlitePool, Transaction};

use crate::row::{INSERT_COLUMNS, bind_message};
use crate::turns::Turn;
use crate::{SqliteBus, SqliteConfig};

/// A transaction begun by [`SqliteOutbox::begin`]: the caller's
/// [`Transaction`] (it derefs to it) holding its turn among this
/// process's writers until it is committed (through
/// [`SqliteOutbox::commit`]) or dropped (rolled back).
#[derive(Debug)]
pub struct OutboxTransaction<'c> {
    tx: Transaction<'c, Sqlite>,
    _turn: Option<Turn>,
}

impl OutboxTransaction<'_> {
    /// Rolls the transaction back (as dropping it does) and ends its turn.
    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

impl<'c> From<Transaction<'c, Sqlite>> for OutboxTransaction<'c> {
    /// A transaction begun without waiting for a turn.
    fn from(tx: Transaction<'c, Sqlite>) -> Self {
        OutboxTransaction { tx, _turn: None }
    }
}

impl<'c> Deref for OutboxTransaction<'c> {
    type Target = Transaction<'c, Sqlite>;

    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl DerefMut for OutboxTransaction<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

/// Appends messages to a SQLite bus's topics inside the caller's own
/// transaction (see the module). Holds the bounds it applies and, made
/// [`for_bus`](Self::for_bus), the bus to wake; cheap to clone and to keep
/// beside a connection pool.
#[derive(Debug, Clone)]
pub struct SqliteOutbox {
    max_message_bytes: usize,
    max_batch_messages: usize,
    topic_capacity: u64,
    /// The bus in this process that [`commit`](Self::commit) wakes.
    bus: Option<SqliteBus>,
}

impl SqliteOutbox {
    /// An outbox for the bus that `config` describes, with its bounds: the
    /// largest message, the largest batch, a topic's capacity. The bus's
    /// tables must exist in the transaction's database: open the bus on
    /// the file once (`SqliteBus::with_config`) before the first publish.
    pub fn new(config: &SqliteConfig) -> Self {
        SqliteOutbox {
            max_message_bytes: config.max_message_bytes,
            max_batch_messages: config.max_batch_messages,
            topic_capacity: config.topic_capacity,
            bus: None,
        }
    }

    /// An outbox for `bus`, open in this process on the same database:
    /// its bounds, and [`commit`](Self::commit) wakes its subscriptions,
    /// so that a relay takes the messages at once.
    pub fn for_bus(bus: &SqliteBus) -> Self {
        SqliteOutbox {
            bus: Some(bus.clone()),
            ..SqliteOutbox::new(bus.config())
        }
    }

    /// Begins a write transaction on `pool` (a pool on the bus's
    /// database): with an outbox made [`for_bus`](Self::for_bus), after
    /// this process's writers before it (the bus's own included), then
    /// `BEGIN IMMEDIATE`. See the module.
    pub async fn begin<'p>(
        &self,
        pool: &'p SqlitePool,
    ) -> Result<OutboxTransaction<'p>, sqlx::Error> {
        let turn = match &self.bus {
            Some(bus) => Some(bus.write_turns().take().await),
            None => None,
        };
        let tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(OutboxTransaction { tx, _turn: turn })
    }

    /// Commits `tx`, then tells the bus of [`for_bus`](Self::for_bus) that
    /// it has new messages ([`SqliteBus::notify_written`]). Committing a
    /// transaction directly works too; the bus then finds its messages
    /// within its poll interval.
    pub async fn commit<'c>(
        &self,
        tx: impl Into<OutboxTransaction<'c>>,
    ) -> Result<(), sqlx::Error> {
        let OutboxTransaction { tx, _turn: turn } = tx.into();
        tx.commit().await?;
        // The bus's writer may go on.
        drop(turn);
        if let Some(bus) = &self.bus {
            bus.notify_written();
        }
        Ok(())
    }

    /// Appends `messages` to `topic` inside `tx`: they become messages of
    /// the topic when, and only when, `tx` commits. All or none: an error
    /// (a bad topic, a message too large, a full topic, the database
    /// failing) leaves `tx` as it found it, and the caller may still
    /// commit its own writes without them, or roll back; but for the
    /// error saying that SQLite rolled `tx` back itself (as it does on a
    /// full disk or an I/O error), after which only a rollback remains.
    ///
    /// A batch of up to 16 messages to a topic that exists and has room
    /// takes two statements: one counts the messages in the topic (after
    /// checking its room), one inserts them all. A single statement is
    /// all or none, and SQLite's transaction outlives a statement that
    /// failed, so if the insert fails the count is taken back. Any other
    /// publish (the topic's first, a full topic, a larger batch) is
    /// written under a savepoint.
    pub async fn publish(
        &self,
        tx: &mut Transaction<'_, Sqlite>,
        topic: &str,
        messages: &[Message],
    ) -> Result<(), BusError> {
        check_topic(topic)?;
        for message in messages {
            let size = message_size(message);
            if size > self.max_message_bytes {
                return Err(BusError::TooLarge {
                    backend: BACKEND.to_owned(),
                    topic: topic.to_owned(),
                    id: message.id().to_owned(),
                    size,
                    limit: self.max_message_bytes,
                });
            }
        }
        if messages.is_empty() {
            return Ok(());
        }
        if messages.len() > self.max_batch_messages {
            return Err(BusError::Full {
                topic: topic.to_owned(),
                reason: format!(
                    "a batch of {} messages is more than one publish may carry ({}, SqliteConfig::max_batch_messages); split it",
                    messages.len(),
                    self.max_batch_messages
                ),
            });
        }
        let connection: &mut SqliteConnection = tx;
        let count = i64::try_from(messages.len()).unwrap_or(i64::MAX);
        if messages.len() <= ONE_STATEMENT {
            match self.reserve_existing(connection, topic, count).await {
                Ok(Some(topic_id)) => {
                    return match insert(connection, topic_id, messages).await {
                        Ok(()) => Ok(()),
                        Err(e) => Err(failed(connection, topic, &e, Some((topic_id, count))).await),
                    };
                }
                // The topic is missing or full: the general way makes it
                // or says how full it is.
                Ok(None) => {}
                Err(e) => return Err(failed(connection, topic, &e, None).await),
            }
        }
        let mut savepoint = Connection::begin(&mut *connection)
            .await
            .map_err(|e| error(topic, &e))?;
        match self.append(&mut savepoint, topic, messages, count).await {
            Ok(()) => savepoint.commit().await.map_err(|e| error(topic, &e)),
            Err(refused) => match savepoint.rollback().await {
                Ok(()) => Err(refused),
                Err(e) => Err(BusError::backend(
                    BACKEND,
                    format!(
                        "{refused}; then undoing the partial publish failed: {e}; roll the transaction back"
                    ),
                )),
            },
        }
    }

    /// Counts `count` more messages in the `retained` of `topic` and
    /// returns its id, in one statement, if the topic exists and has room
    /// for them by [`reserve`](Self::reserve)'s rule; `None`, having
    /// written nothing, if it is missing or full.
    async fn reserve_existing(
        &self,
        connection: &mut SqliteConnection,
        topic: &str,
        count: i64,
    ) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query_scalar(
            "UPDATE plexus_topics SET retained = retained + ?1 \
             WHERE name = ?2 AND (retained + ?1 <= ?3 \
               OR NOT EXISTS (SELECT 1 FROM plexus_groups WHERE topic_id = plexus_topics.id)) \
             RETURNING id",
        )
        .bind(count)
        .bind(topic)
        .bind(self.capacity())
        .fetch_optional(&mut *connection)
        .await
    }

    /// Writes `messages` (checked, `count` of them) to `topic` on
    /// `connection`, under the caller's savepoint.
    async fn append(
        &self,
        connection: &mut SqliteConnection,
        topic: &str,
        messages: &[Message],
        count: i64,
    ) -> Result<(), BusError> {
        let topic_id = self.reserve(connection, topic, count).await?;
        insert(connection, topic_id, messages)
            .await
            .map_err(|e| error(topic, &e))
    }

    /// The id of `topic` (made if missing), with room for `count` more
    /// messages counted in its `retained`; a topic whose groups have not
    /// caught up past its capacity refuses them (the savepoint's rollback
    /// takes the count back).
    async fn reserve(
        &self,
        connection: &mut SqliteConnection,
        topic: &str,
        count: i64,
    ) -> Result<i64, BusError> {
        let (topic_id, retained): (i64, i64) = sqlx::query_as(
            "INSERT INTO plexus_topics (name, retained) VALUES (?1, ?2) \
             ON CONFLICT (name) DO UPDATE SET retained = retained + excluded.retained \
             RETURNING id, retained",
        )
        .bind(topic)
        .bind(count)
        .fetch_one(&mut *connection)
        .await
        .map_err(|e| error(topic, &e))?;
        let capacity = self.capacity();
        if retained <= capacity {
            return Ok(topic_id);
        }
        let has_groups: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM plexus_groups WHERE topic_id = ?1)")
                .bind(topic_id)
                .fetch_one(&mut *connection)
                .await
                .map_err(|e| error(topic, &e))?;
        if !has_groups {
            return Ok(topic_id);
        }
        Err(BusError::Full {
            topic: topic.to_owned(),
            reason: format!(
                "it retains {} messages not yet acknowledged by every group, and {count} more would pass its capacity of {capacity} (SqliteConfig::topic_capacity)",
                retained - count
            ),
        })
    }

    /// A topic's capacity, as SQLite counts.
    fn capacity(&self) -> i64 {
        i64::try_from(self.topic_capacity).unwrap_or(i64::MAX)
    }
}

/// The most messages that [`SqliteOutbox::publish`] inserts in one
/// statement of exactly their number (a power of two, for [`chunk_rows`]).
const ONE_STATEMENT: usize = 16;
const _: () = assert!(ONE_STATEMENT.is_power_of_two());

/// The most rows of one INSERT: SQLite binds at most 32,766 parameters,
/// 2,978 rows of [`COLUMNS_PER_ROW`].
const MOST_ROWS: usize = 2048;

/// Parameters that [`bind_message`] binds per message.
const COLUMNS_PER_ROW: usize = 11;

/// The INSERT of each number of rows that [`chunk_rows`] gives: 1 to
/// [`ONE_STATEMENT`], and the powers of two above up to [`MOST_ROWS`].
/// Each is a prepared statement cached on the caller's connection,
/// hence few of them.
static INSERTS: LazyLock<BTreeMap<usize, String>> = LazyLock::new(|| {
    let row = format!("({})", ["?"; COLUMNS_PER_ROW].join(", "));
    let powers = std::iter::successors(Some(2 * ONE_STATEMENT), |rows| Some(2 * rows))
        .take_while(|rows| *rows <= MOST_ROWS);
    (1..=ONE_STATEMENT)
        .chain(powers)
        .map(|rows| {
            let values = vec![row.as_str(); rows].join(", ");
            let sql = format!("INSERT INTO plexus_messages ({INSERT_COLUMNS}) VALUES {values}");
            (rows, sql)
        })
        .collect()
});

/// The rows of the next INSERT when `rest` messages are left: all of
/// them up to [`ONE_STATEMENT`], else the largest power of two of them,
/// at most [`MOST_ROWS`].
fn chunk_rows(rest: usize) -> usize {
    if rest <= ONE_STATEMENT {
        rest
    } else {
        1 << rest.min(MOST_ROWS).ilog2()
    }
}

/// Inserts `messages` into topic `topic_id`, in one statement per
/// [`chunk_rows`]: all or none only when that is one statement.
async fn insert(
    connection: &mut SqliteConnection,
    topic_id: i64,
    messages: &[Message],
) -> Result<(), sqlx::Error> {
    let mut rest = messages;
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(chunk_rows(rest.len()));
        let sql = &INSERTS[&chunk.len()];
        let mut query = sqlx::query(sql.as_str());
        for message in chunk {
            query = bind_message(query, topic_id, message);
        }
        query.execute(&mut *connection).await?;
        rest = tail;
    }
    Ok(())
}

/// The error of a publish without a savepoint whose statement failed
/// with `cause`, after taking back the count it `reserved` (the topic's
/// id, the count). SQLite rolls the whole transaction back on a few
/// errors (a full disk, an I/O error, memory running out), and runs each
/// later statement on its own: taking the count back then would commit
/// it. So a `BEGIN` tells first: inside a transaction it fails; if it
/// succeeds, it is rolled back and nothing is taken back. (These rare
/// statements are not kept prepared on the caller's connection.)
async fn failed(
    connection: &mut SqliteConnection,
    topic: &str,
    cause: &sqlx::Error,
    reserved: Option<(i64, i64)>,
) -> BusError {
    let failed = error(topic, cause);
    if sqlx::query("BEGIN")
        .persistent(false)
        .execute(&mut *connection)
        .await
        .is_ok()
    {
        let ended = match sqlx::query("ROLLBACK")
            .persistent(false)
            .execute(&mut *connection)
            .await
        {
            Ok(_) => String::new(),
            Err(e) => format!(" (and ending the check's own transaction failed: {e})"),
        };
        return BusError::backend(
            BACKEND,
            format!(
                "{failed}; SQLite rolled the caller's transaction back with it{ended}: roll it back"
            ),
        );
    }
    let Some((topic_id, count)) = reserved else {
        return failed;
    };
    let undone = sqlx::query("UPDATE plexus_topics SET retained = retained - ?1 WHERE id = ?2")
        .persistent(false)
        .bind(count)
        .bind(topic_id)
        .execute(&mut *connection)
        .await;
    match undone {
        Ok(_) => failed,
        Err(e) => BusError::backend(
            BACKEND,
            format!(
                "{failed}; then undoing the partial publish failed: {e}; roll the transaction back"
            ),
        ),
    }
}

/// The backend's name in errors.
const BACKEND: &str = "SQLite outbox";

fn error(topic: &str, error: &sqlx::Error) -> BusError {
    BusError::backend(
        BACKEND,
        format!(
            "publishing to topic `{topic}` in the caller's transaction failed: {error}; check that the bus was opened on this database once (its tables exist)"
        ),
    )
}
