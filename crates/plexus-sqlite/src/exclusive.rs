//! Exclusive groups ([`SubscribeOptions::exclusive`]) on SQLite: one
//! member at a time holds the group and reads its topic in `seq` order
//! (SQLite's single writer commits in that order) with no pending rows;
//! the group's cursor is its position.
//!
//! - **Holding.** A member takes an exclusive lock on a file beside the
//!   database (`DB.group-ID.lock`), trying again every poll interval
//!   while another holds it. The operating system lets it go with the
//!   process, so a member that dies hands the group over within a poll
//!   interval. The file stays: it marks the group exclusive, and a shared
//!   member of it is refused.
//! - **Reading** is on a connection of the member's own (WAL readers do
//!   not wait for the writer); a commit of this process that gave a topic
//!   something, or [`SqliteBus::notify_written`], brings the next read,
//!   the poll interval one after writes of other processes.
//! - **The cursor** is written on that connection, in this process's
//!   write turn ([`WriteTurns`]), without waiting for the disk (lost in a
//!   crash, the position steps back and messages come again). The rounds,
//!   acks and nacks are [`plexus_core::bus::exclusive`]'s.
//!
//! [`SqliteBus::notify_written`]: crate::SqliteBus::notify_written
//! [`WriteTurns`]: crate::turns::WriteTurns

use std::fs::{File, TryLockError};
use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

use plexus_core::bus::exclusive::{self, ExclusiveSource, Feed, Read};
use plexus_core::bus::{BoxFuture, BusError, SubscribeOptions, Subscription};
use sqlx::{Connection as _, Row as _, SqliteConnection};
use tokio::sync::{oneshot, watch};

use crate::SqliteConfig;
use crate::bus::Shared;
use crate::row;
use crate::schema;
use crate::writer::{Command, Joined, now_ms};

/// Up to ?3 messages of topic ?1 after seq ?2, in order.
static READ: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM plexus_messages WHERE topic_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        row::COLUMNS
    )
});

/// Joins `options`' group of `topic` as an exclusive member; its stream
/// stands by until the member holds the group.
pub(crate) async fn open(
    shared: Arc<Shared>,
    topic: &str,
    options: SubscribeOptions,
) -> Result<Subscription, BusError> {
    let group = options
        .group
        .clone()
        .ok_or_else(|| BusError::invalid("exclusive", "an exclusive subscription needs a group"))?;
    let (reply, answer) = oneshot::channel();
    let command = Command::Join {
        topic: topic.to_owned(),
        group: group.clone(),
        private: false,
        start: options.start,
        reply,
    };
    let Joined { topic_id, group_id } = shared.call("subscriber", command, answer).await?;
    let connection = schema::connect_relaxed(&shared.config).await.map_err(|e| {
        BusError::backend(
            shared.name.as_ref(),
            format!("opening an exclusive member's connection failed: {e}"),
        )
    })?;
    let topic: Arc<str> = topic.into();
    let (subscription, feed) =
        exclusive::channel(Arc::clone(&topic), Arc::clone(&shared.name), options);
    let source = Source {
        lock: lock_path(&shared.config, group_id),
        written: shared.written.subscribe(),
        shared,
        topic,
        topic_id,
        group_name: group,
        group: group_id,
        connection,
    };
    tokio::spawn(source.run(feed));
    Ok(subscription)
}

/// The lock file of exclusive group `group_id`, beside the database. Its
/// existence marks the group exclusive: shared members are refused.
pub(crate) fn lock_path(config: &SqliteConfig, group_id: i64) -> PathBuf {
    let mut lock = config.path.clone().into_os_string();
    lock.push(format!(".group-{group_id}.lock"));
    PathBuf::from(lock)
}

/// The member: on stand-by for the group's lock file, then holding the
/// group.
struct Source {
    shared: Arc<Shared>,
    topic: Arc<str>,
    topic_id: i64,
    group_name: String,
    group: i64,
    lock: PathBuf,
    connection: SqliteConnection,
    written: watch::Receiver<u64>,
}

impl Source {
    async fn run(mut self, mut feed: Feed) {
        let closed = self.shared.closed.clone();
        let outcome = match self.stand_by(&feed).await {
            Ok(Some((start, _held))) => feed.run(&mut self, start, closed.cancelled()).await,
            Ok(None) => Ok(()),
            Err(error) => Err(error),
        };
        if let Err(error) = outcome {
            feed.fail(error).await;
        }
        let _ = self.connection.close().await;
    }

    /// Waits for the group's lock, then takes the group: its cursor and
    /// the locked file (the lock lasts as long as it is open), or `None`
    /// when the subscription or the bus went first.
    async fn stand_by(&mut self, feed: &Feed) -> Result<Option<(i64, File)>, BusError> {
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock)
            .map_err(|e| {
                self.error(&format!("opening the lock file {}", self.lock.display()), e)
            })?;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => {
                    return Err(self.error(&format!("locking {}", self.lock.display()), e));
                }
            }
            tokio::select! {
                () = tokio::time::sleep(self.shared.config.poll_interval) => {}
                () = self.shared.closed.cancelled() => return Ok(None),
                () = feed.dropped() => return Ok(None),
            }
        }
        let (shared_taken, cursor): (i64, Option<i64>) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM plexus_pending WHERE group_id = ?1) \
                  + (SELECT count(*) FROM plexus_runs WHERE group_id = ?1), \
                    (SELECT cursor FROM plexus_groups WHERE id = ?1)",
        )
        .bind(self.group)
        .fetch_one(&mut self.connection)
        .await
        .map_err(|e| self.error("taking the group", e))?;
        let Some(cursor) = cursor else {
            return Err(self.error("taking the group", "it no longer exists"));
        };
        if shared_taken > 0 {
            return Err(exclusive::taken_by_shared_members(
                &self.group_name,
                &self.topic,
            ));
        }
        tracing::debug!(topic = %self.topic, group = %self.group_name, "holding an exclusive group");
        Ok(Some((cursor, file)))
    }

    async fn read_after(&mut self, after: i64, max: usize) -> Result<Read<i64>, BusError> {
        // What is committed from here on wakes the next wait.
        self.written.borrow_and_update();
        let rows = sqlx::query(&READ)
            .bind(self.topic_id)
            .bind(after)
            .bind(i64::try_from(max).unwrap_or(i64::MAX))
            .fetch_all(&mut self.connection)
            .await
            .map_err(|e| self.error("reading", e))?;
        let mut messages = Vec::with_capacity(rows.len());
        for stored in &rows {
            let seq: i64 = stored.try_get(0).map_err(|e| self.error("reading", e))?;
            let message = row::decode(stored).map(|(_, message)| message).inspect_err(|reason| {
                tracing::error!(topic = %self.topic, group = %self.group_name, seq, %reason, "a stored message is not a valid plexus message; the exclusive group passes over it");
            });
            messages.push((seq, message));
        }
        Ok(Read {
            messages,
            again_in: self.shared.config.poll_interval,
        })
    }

    async fn advance(&mut self, to: i64) -> Result<(), BusError> {
        let _turn = self.shared.turns.take().await;
        let written =
            sqlx::query("UPDATE plexus_groups SET cursor = ?1, touched_ms = ?2 WHERE id = ?3")
                .bind(to)
                .bind(now_ms())
                .bind(self.group)
                .execute(&mut self.connection)
                .await
                .map_err(|e| self.error("moving the group's cursor", e))?;
        if written.rows_affected() != 1 {
            return Err(self.error("moving the group's cursor", "the group no longer exists"));
        }
        Ok(())
    }

    fn error(&self, what: &str, error: impl std::fmt::Display) -> BusError {
        BusError::backend(
            self.shared.name.as_ref(),
            format!(
                "{what} (exclusive group `{}` of topic `{}`) failed: {error}",
                self.group_name, self.topic
            ),
        )
    }
}

impl ExclusiveSource for Source {
    type Position = i64;

    fn read<'a>(
        &'a mut self,
        after: &'a i64,
        max: usize,
    ) -> BoxFuture<'a, Result<Read<i64>, BusError>> {
        Box::pin(self.read_after(*after, max))
    }

    fn write<'a>(&'a mut self, to: &'a i64) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(self.advance(*to))
    }

    fn woken(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if self.written.changed().await.is_err() {
                // The writer is gone (the bus closed): nothing more comes.
                std::future::pending::<()>().await;
            }
        })
    }
}
