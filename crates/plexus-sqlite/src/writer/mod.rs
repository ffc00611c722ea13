//! The writer: one task that owns the database connection and applies
//! every change — publishes, group joins, claims, acks and nacks — in
//! group commits: it drains its bounded queue, applies everything drained
//! in one transaction, commits once (one fsync), then answers every
//! waiter. Concurrent publishers thus share a commit; a caller learns of
//! its change only once it is on disk.

mod answer;
mod apply;
mod cache;
mod command;
mod group;
mod handover;
mod outbox;
mod park;
mod pick;
mod publish;
mod retention;
mod runs;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use plexus_core::bus::{BoxFuture, BusError};
use sqlx::sqlite::SqliteConnection;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::SqliteConfig;
use crate::schema;
use crate::turns::WriteTurns;

pub(crate) use command::Command;
pub(crate) use group::{Claimed, Joined};

use command::{Outcome, answer, fail};

/// Changes to the writer's in-memory state, applied only once the
/// transaction that made them has committed; and the topics it gave
/// something to take (parked claims of those run in it).
#[derive(Default)]
struct Effects {
    new_topics: Vec<(String, i64)>,
    joined_private: Vec<i64>,
    left: Vec<i64>,
    wake: HashSet<Arc<str>>,
    leased: Vec<handover::Leased>,
    runs: runs::RunChanges,
}

/// The task owning the connection.
pub(crate) struct Writer {
    connection: SqliteConnection,
    /// Held through each of the writer's transactions, and by outbox
    /// transactions of this process on the same database
    /// ([`WriteTurns`]): they take turns here, in order, instead of in
    /// SQLite's busy handler, which sleeps.
    turns: WriteTurns,
    config: Arc<SqliteConfig>,
    /// The backend's name in errors (names the database file).
    name: Arc<str>,
    /// This bus instance's id, marking the leases it hands out.
    instance: i64,
    /// Topic ids known to be committed.
    topics: HashMap<String, i64>,
    /// Private groups of this process, kept alive in the database.
    private_groups: HashSet<i64>,
    publish: publish::Statements,
    /// Messages appended lately, handed to claims without reading them.
    cache: cache::Cache,
    /// Claims waiting for their topic.
    parked: Vec<park::Parked>,
    /// Parked claims taken into the open transaction, with what they got.
    unparked: Vec<(park::Parked, Option<Claimed>)>,
    /// Leases whose claimer went away before the answer: returned in the
    /// next transaction.
    returns: Vec<park::Returned>,
    /// Leases of the last commit to move to a later due (see
    /// [`handover`]): done first in the next transaction, before any
    /// claim of this writer could see them (no commit of their own: that
    /// would cost an fsync after every slow commit).
    extensions: Vec<handover::Extension>,
    /// The runs this writer leased (see [`runs`]).
    runs: runs::Runs,
    effects: Effects,
    retention_due: Instant,
    touch_due: Instant,
    /// When to look for outbox messages next ([`outbox`]).
    outbox_poll: Instant,
    /// The next transaction moves outbox messages ([`outbox`]): this
    /// process's outbox committed some, the poll found some, or the last
    /// move read a whole batch.
    outbox_due: bool,
    /// When moving outbox messages put off while this process's other
    /// writers hold the database stops waiting for them ([`outbox`]).
    outbox_deadline: Option<Instant>,
    /// When to look next whether the database is free for them.
    outbox_next_check: Instant,
    /// Set by [`SqliteBus::notify_written`](crate::SqliteBus::notify_written):
    /// makes `outbox_due` at the next transaction.
    outbox_written: Arc<AtomicBool>,
    outbox_reported: outbox::Reported,
    /// The connection commits without waiting for the disk
    /// (`Writer::commit_own`) until set back.
    relaxed: bool,
    /// Counts the commits that gave a topic something, and wake-ups from
    /// other connections: exclusive groups' holders read again on it.
    written: Arc<watch::Sender<u64>>,
}

/// Wall-clock milliseconds since the Unix epoch (stored deadlines are
/// wall-clock so that another process reads them the same way).
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A random id for this bus instance (the random bits of a UUIDv7).
fn instance_id() -> i64 {
    let (_, random) = uuid::Uuid::now_v7().as_u64_pair();
    i64::from_ne_bytes(random.to_ne_bytes())
}

/// Milliseconds of `duration`, saturating.
pub(crate) fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl Writer {
    /// Opens the database of `config`.
    pub(crate) async fn open(
        config: Arc<SqliteConfig>,
        name: Arc<str>,
        turns: WriteTurns,
        written: Arc<watch::Sender<u64>>,
        outbox_written: Arc<AtomicBool>,
    ) -> Result<Self, sqlx::Error> {
        let connection = schema::open(&config).await?;
        let now = Instant::now();
        Ok(Writer {
            connection,
            turns,
            cache: cache::Cache::new(config.cache_bytes),
            parked: Vec::new(),
            unparked: Vec::new(),
            returns: Vec::new(),
            extensions: Vec::new(),
            config,
            name,
            instance: instance_id(),
            topics: HashMap::new(),
            private_groups: HashSet::new(),
            publish: publish::Statements::new(),
            runs: runs::Runs::default(),
            effects: Effects::default(),
            retention_due: now,
            touch_due: now,
            outbox_poll: now,
            outbox_due: true,
            outbox_deadline: None,
            outbox_next_check: now,
            outbox_written,
            outbox_reported: outbox::Reported::default(),
            relaxed: false,
            written,
        })
    }

    /// Applies commands until every sender is gone or a `Close` arrives.
    pub(crate) async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let max_commands = self.config.queue_capacity;
        let max_messages = self.config.max_commit_messages;
        loop {
            let first = tokio::select! {
                biased;
                command = commands.recv() => command,
                () = tokio::time::sleep_until(self.retention_due) => {
                    self.retain().await;
                    continue;
                }
                Some(()) = sleep_until(self.next_parked_due()) => {
                    self.expire_parked();
                    continue;
                }
                () = tokio::time::sleep_until(self.outbox_poll) => {
                    self.poll_outbox().await;
                    continue;
                }
                Some(()) = sleep_until(self.outbox_check()) => {
                    self.move_outbox_when_free().await;
                    continue;
                }
            };
            let Some(first) = first else { break };
            if matches!(first, Command::Wake) {
                self.outbox_committed();
                self.wake_parked();
                self.written.send_modify(|n| *n += 1);
                continue;
            }
            let mut wake = false;
            // What is queued now shares this commit. Waiting up to 1 ms for
            // the publishers the last commit answered (fewer, fuller
            // commits) made the bus bench slower, 0.50-0.54 against
            // 0.57-0.59 of raw inserts at 64 B x 16 publishers.
            let mut batch = Vec::new();
            let mut messages = first.messages();
            let mut close = None;
            match first {
                Command::Close { reply } => close = Some(reply),
                command => batch.push(command),
            }
            while close.is_none() && batch.len() < max_commands && messages < max_messages {
                match commands.try_recv() {
                    Ok(Command::Close { reply }) => close = Some(reply),
                    Ok(Command::Wake) => {
                        // Its outbox messages go before these commands'.
                        self.outbox_due = true;
                        wake = true;
                    }
                    Ok(command) => {
                        messages += command.messages();
                        batch.push(command);
                    }
                    Err(_) => break,
                }
            }
            if close.is_some() {
                batch.push(Command::ReleaseLeases);
            }
            if !batch.is_empty() {
                self.commit(batch).await;
            }
            if !self.returns.is_empty() || self.outbox_due {
                // Leases whose claimer went away go back at once; a
                // backlog in the outbox moves on between commands.
                self.commit_own().await;
            }
            if wake {
                self.wake_parked();
                self.written.send_modify(|n| *n += 1);
            }
            if let Some(reply) = close {
                schema::close(self.connection, self.config.busy_timeout).await;
                let _ = reply.send(());
                return;
            }
            if Instant::now() >= self.retention_due {
                self.retain().await;
            }
            if Instant::now() >= self.outbox_poll {
                self.poll_outbox().await;
            }
            // Due parked claims are answered even while commands keep
            // coming (the select above prefers commands).
            if self
                .next_parked_due()
                .is_some_and(|at| at <= Instant::now())
            {
                self.expire_parked();
            }
        }
        schema::close(self.connection, self.config.busy_timeout).await;
    }

    /// Applies `batch` in one transaction and answers each command; when
    /// that fails, applies each command in a transaction of its own, so
    /// one bad command fails alone.
    async fn commit(&mut self, batch: Vec<Command>) {
        if batch.len() != 1 {
            match self.transaction(&batch).await {
                Ok(outcomes) => {
                    self.committed();
                    let parked = answer(batch, outcomes, &mut self.returns);
                    self.parked.extend(parked);
                    return;
                }
                Err(error) if batch.is_empty() => {
                    tracing::warn!(%error, "the writer's own transaction (moving outbox messages, returning leases) failed; moving outbox messages waits for the next poll");
                    self.outbox_due = false;
                    return;
                }
                Err(error) => {
                    tracing::debug!(%error, commands = batch.len(), "group commit failed; retrying each command alone");
                }
            }
        }
        for command in batch {
            let single = [command];
            let result = self.transaction(&single).await;
            let [command] = single;
            match result {
                Ok(outcomes) => {
                    self.committed();
                    let parked = answer(vec![command], outcomes, &mut self.returns);
                    self.parked.extend(parked);
                }
                Err(error) => fail(command, error),
            }
        }
    }

    /// One transaction over `batch`: every outcome, or the error that
    /// rolled it back.
    fn transaction<'a>(
        &'a mut self,
        batch: &'a [Command],
    ) -> BoxFuture<'a, Result<Vec<Outcome>, BusError>> {
        // Boxed with `Send` spelled out: the compiler cannot prove it for
        // sqlx's borrowed executors through the spawned task otherwise.
        Box::pin(self.transaction_inner(batch))
    }

    async fn transaction_inner(&mut self, batch: &[Command]) -> Result<Vec<Outcome>, BusError> {
        if !batch.is_empty() {
            self.durable().await?;
        }
        self.effects = Effects::default();
        let now = now_ms();
        let _turn = self.turns.take().await;
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut self.connection)
            .await
            .map_err(|e| self.error("starting a write transaction", &e))?;
        match self.apply(batch, now).await {
            Ok(outcomes) => {
                if let Err(e) = sqlx::query("COMMIT").execute(&mut self.connection).await {
                    let error = self.error("committing", &e);
                    self.rollback().await;
                    return Err(error);
                }
                Ok(outcomes)
            }
            Err(error) => {
                self.rollback().await;
                Err(error)
            }
        }
    }

    async fn rollback(&mut self) {
        self.effects = Effects::default();
        // Outbox messages it moved are back in the outbox.
        self.outbox_due = true;
        self.cache.rollback();
        self.settle_unparked(false);
        if let Err(error) = sqlx::query("ROLLBACK").execute(&mut self.connection).await {
            tracing::debug!(%error, "rollback after a failed write (no transaction may be open)");
        }
    }

    /// Applies the effects of the committed transaction.
    fn committed(&mut self) {
        self.cache.commit();
        self.settle_unparked(true);
        let effects = std::mem::take(&mut self.effects);
        if !effects.wake.is_empty() {
            self.written.send_modify(|n| *n += 1);
        }
        self.extensions.extend(handover::extensions(effects.leased));
        self.topics.extend(effects.new_topics);
        self.private_groups.extend(effects.joined_private);
        self.runs.apply(effects.runs);
        for group in effects.left {
            self.private_groups.remove(&group);
        }
    }

    /// A backend error naming the database and what was being done.
    fn error(&self, doing: &str, error: &sqlx::Error) -> BusError {
        BusError::backend(
            self.name.as_ref(),
            format!(
                "{doing} failed: {error}; check that the database file and its directory are writable and the disk has room"
            ),
        )
    }

    /// The id of `topic`, creating it if needed.
    async fn topic_id(&mut self, topic: &str) -> Result<i64, BusError> {
        if let Some(id) = self.topics.get(topic) {
            return Ok(*id);
        }
        if let Some((_, id)) = self.effects.new_topics.iter().find(|(t, _)| t == topic) {
            return Ok(*id);
        }
        let doing = || format!("creating topic `{topic}`");
        sqlx::query("INSERT INTO plexus_topics (name) VALUES (?1) ON CONFLICT (name) DO NOTHING")
            .bind(topic)
            .execute(&mut self.connection)
            .await
            .map_err(|e| self.error(&doing(), &e))?;
        let id: i64 = sqlx::query_scalar("SELECT id FROM plexus_topics WHERE name = ?1")
            .bind(topic)
            .fetch_one(&mut self.connection)
            .await
            .map_err(|e| self.error(&doing(), &e))?;
        self.effects.new_topics.push((topic.to_owned(), id));
        Ok(id)
    }
}

/// Sleeps until `at`; never ends without one.
async fn sleep_until(at: Option<Instant>) -> Option<()> {
    match at {
        Some(at) => {
            tokio::time::sleep_until(at).await;
            Some(())
        }
        None => std::future::pending().await,
    }
}
