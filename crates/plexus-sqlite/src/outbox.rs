//! [`SqliteOutbox`]: the transactional outbox on a SQLite bus's database.
//!
//! A service writes its own rows and the messages they imply in one
//! transaction of its own: `outbox.publish(&mut tx, topic, messages)`
//! writes the messages to the bus's outbox table on the transaction's
//! connection, so they exist exactly when the transaction commits. A
//! rollback leaves no trace. The bus's writer then moves committed
//! messages into their topics, oldest first, where they are messages like
//! any other, delivered to the topics' consumer groups (which is how a
//! relay takes them to another broker). SQLite has one writer at a time,
//! so a transaction that commits later writes later rows: consumers see
//! the messages of a topic in commit order, and before anything the bus
//! itself publishes to the topic after they committed.
//!
//! The outbox table has no index and no counters: a publish inside the
//! service's transaction is one INSERT, the least a commit can carry.
//! Moving messages into a topic (its sequence, its count, its index) is
//! the writer's work, in transactions of its own, batched.
//!
//! When the transaction is committed through [`SqliteOutbox::commit`]
//! (an outbox made [`for_bus`](SqliteOutbox::for_bus)), the bus's writer
//! moves them before anything it writes next, and at once when the
//! database is free (within
//! [`SqliteConfig::outbox_delay`](crate::SqliteConfig::outbox_delay)
//! while this process's transactions keep it busy). Otherwise any bus
//! open on the file finds them within
//! [`SqliteConfig::poll_interval`](crate::SqliteConfig::poll_interval).
//! Until a bus is open on the file, they wait in the table.
//!
//! Begin the transaction with [`SqliteOutbox::begin`]: it waits its turn
//! among this process's writers of the database, the bus's own included,
//! and then takes the write lock (`BEGIN IMMEDIATE`), so that the
//! service's transactions and the writer's follow each other instead of
//! meeting in SQLite's busy handler, which sleeps up to 100 ms between
//! tries. While such a transaction is open, the bus waits: do not wait on
//! the bus (a publish, an ack) inside it.

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};
use std::sync::LazyLock;

use plexus_core::Message;
use plexus_core::bus::{BusError, check_topic, message_size};
use sqlx::{Connection, Sqlite, SqliteConnection, SqlitePool, Transaction};

use crate::row::{MESSAGE_COLUMNS, bind_columns};
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

/// Writes messages to a SQLite bus's outbox inside the caller's own
/// transaction (see the module). Holds the bounds it applies and, made
/// [`for_bus`](Self::for_bus), the bus to wake; cheap to clone and to keep
/// beside a connection pool.
#[derive(Debug, Clone)]
pub struct SqliteOutbox {
    max_message_bytes: usize,
    max_batch_messages: usize,
    capacity: i64,
    /// The bus in this process that [`commit`](Self::commit) wakes.
    bus: Option<SqliteBus>,
}

impl SqliteOutbox {
    /// An outbox for the bus that `config` describes, with its bounds: the
    /// largest message, the largest batch, the outbox's capacity. The
    /// bus's tables must exist in the transaction's database: open the bus
    /// on the file once (`SqliteBus::with_config`) before the first
    /// publish; a bus open on the file moves the messages into their
    /// topics.
    pub fn new(config: &SqliteConfig) -> Self {
        SqliteOutbox {
            max_message_bytes: config.max_message_bytes,
            max_batch_messages: config.max_batch_messages,
            capacity: i64::try_from(config.outbox_capacity).unwrap_or(i64::MAX),
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
    /// the outbox has new messages ([`SqliteBus::notify_written`]): its
    /// writer moves them into their topics at once. Committing a
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

    /// Writes `messages` for `topic` inside `tx`: they become messages of
    /// the topic when, and only when, `tx` commits (the bus's writer moves
    /// them there, see the module). All or none: an error (a bad topic, a
    /// message too large, a full outbox, the database failing) leaves `tx`
    /// as it found it, and the caller may still commit its own writes
    /// without them, or roll back; but for the error saying that SQLite
    /// rolled `tx` back itself (as it does on a full disk or an I/O
    /// error), after which only a rollback remains.
    ///
    /// A batch of up to 16 messages, or of a power of two up to 2,048, is
    /// one statement, which checks the outbox's room and inserts the
    /// batch; a larger batch is written under a savepoint.
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
        if chunk_rows(messages.len()) == messages.len() {
            return match insert(connection, topic, messages, self.capacity).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(self.full(connection, topic, messages.len()).await),
                Err(e) => Err(failed(connection, topic, &e).await),
            };
        }
        let mut savepoint = Connection::begin(&mut *connection)
            .await
            .map_err(|e| error(topic, &e))?;
        let refused = match insert(&mut savepoint, topic, messages, self.capacity).await {
            Ok(true) => return savepoint.commit().await.map_err(|e| error(topic, &e)),
            Ok(false) => self.full(&mut savepoint, topic, messages.len()).await,
            Err(e) => error(topic, &e),
        };
        match savepoint.rollback().await {
            Ok(()) => Err(refused),
            Err(e) => Err(BusError::backend(
                BACKEND,
                format!(
                    "{refused}; then undoing the partial publish failed: {e}; roll the transaction back"
                ),
            )),
        }
    }

    /// The error refusing `count` messages for `topic` because the outbox
    /// has no room for them.
    async fn full(&self, connection: &mut SqliteConnection, topic: &str, count: usize) -> BusError {
        let held = match sqlx::query_scalar::<_, i64>(&format!("SELECT {HELD}"))
            .persistent(false)
            .fetch_one(&mut *connection)
            .await
        {
            Ok(held) => held.to_string(),
            Err(e) => format!("? (counting them failed: {e})"),
        };
        BusError::Full {
            topic: topic.to_owned(),
            reason: format!(
                "the outbox holds {held} messages not yet moved into their topics, and {count} more would pass its capacity of {} (SqliteConfig::outbox_capacity); a bus open on the database moves them, but holds back those of a full topic until its groups catch up",
                self.capacity
            ),
        }
    }
}

/// The messages the outbox holds, as far as its rowids tell (the
/// writer moves them out oldest first, so the span of rowids left is
/// their number, or more while a full topic holds some back): two
/// lookups at the table's ends, no count.
const HELD: &str = "coalesce((SELECT max(rowid) FROM plexus_outbox) \
     - (SELECT min(rowid) FROM plexus_outbox) + 1, 0)";

/// The most messages that [`SqliteOutbox::publish`] inserts in one
/// statement of exactly their number (a power of two, for [`chunk_rows`]).
const ONE_STATEMENT: usize = 16;
const _: () = assert!(ONE_STATEMENT.is_power_of_two());

/// The most rows of one INSERT: SQLite binds at most 32,766 parameters,
/// 2,978 rows of [`COLUMNS_PER_ROW`].
const MOST_ROWS: usize = 2048;

/// Parameters bound per message: its topic and [`bind_columns`]'.
const COLUMNS_PER_ROW: usize = 11;

/// The INSERT of each number of rows that [`chunk_rows`] gives: 1 to
/// [`ONE_STATEMENT`], and the powers of two above up to [`MOST_ROWS`].
/// Each inserts its rows only if the outbox has room for them (the last
/// parameter is its capacity). Each is a prepared statement cached on the
/// caller's connection, hence few of them.
static INSERTS: LazyLock<BTreeMap<usize, String>> = LazyLock::new(|| {
    let row = ["?"; COLUMNS_PER_ROW].join(", ");
    let powers = std::iter::successors(Some(2 * ONE_STATEMENT), |rows| Some(2 * rows))
        .take_while(|rows| *rows <= MOST_ROWS);
    (1..=ONE_STATEMENT)
        .chain(powers)
        .map(|rows| {
            let values = if rows == 1 {
                format!("SELECT {row}")
            } else {
                let values = vec![format!("({row})"); rows].join(", ");
                format!("SELECT * FROM (VALUES {values})")
            };
            let sql = format!(
                "INSERT INTO plexus_outbox (topic, {MESSAGE_COLUMNS}) {values} \
                 WHERE {HELD} + {rows} <= ?"
            );
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

/// Inserts `messages` for `topic` into the outbox, in one statement per
/// [`chunk_rows`], while it has room for them (all or none only when
/// that is one statement): whether it had.
async fn insert(
    connection: &mut SqliteConnection,
    topic: &str,
    messages: &[Message],
    capacity: i64,
) -> Result<bool, sqlx::Error> {
    let mut rest = messages;
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(chunk_rows(rest.len()));
        let sql = &INSERTS[&chunk.len()];
        let mut query = sqlx::query(sql.as_str());
        for message in chunk {
            query = bind_columns(query.bind(topic), message);
        }
        let done = query.bind(capacity).execute(&mut *connection).await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        rest = tail;
    }
    Ok(true)
}

/// The error of a publish without a savepoint whose statement failed
/// with `cause`. SQLite rolls the whole transaction back on a few errors
/// (a full disk, an I/O error, memory running out), and runs each later
/// statement on its own, so a `BEGIN` tells which: inside a transaction
/// it fails; if it succeeds, it is rolled back and the error says that
/// the caller's transaction is gone. (These rare statements are not kept
/// prepared on the caller's connection.)
async fn failed(connection: &mut SqliteConnection, topic: &str, cause: &sqlx::Error) -> BusError {
    let failed = error(topic, cause);
    if sqlx::query("BEGIN")
        .persistent(false)
        .execute(&mut *connection)
        .await
        .is_err()
    {
        return failed;
    }
    let ended = match sqlx::query("ROLLBACK")
        .persistent(false)
        .execute(&mut *connection)
        .await
    {
        Ok(_) => String::new(),
        Err(e) => format!(" (and ending the check's own transaction failed: {e})"),
    };
    BusError::backend(
        BACKEND,
        format!(
            "{failed}; SQLite rolled the caller's transaction back with it{ended}: roll it back"
        ),
    )
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
