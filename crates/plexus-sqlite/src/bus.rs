//! [`SqliteBus`]: the [`Publisher`] and [`Subscriber`] over the writer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use plexus_core::Message;
use plexus_core::bus::{
    BoxFuture, BusError, Features, Publisher, SubscribeOptions, Subscriber, Subscription,
    check_topic, message_size,
};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::SqliteConfig;
use crate::turns::WriteTurns;
use crate::writer::{Command, Writer};
use crate::{exclusive, subscription};

/// The embedded durable bus on a SQLite database: a [`Publisher`] and a
/// [`Subscriber`]. Clones share the database connection and its writer.
///
/// See the [crate documentation](crate) for how it stores and delivers.
#[derive(Debug, Clone)]
pub struct SqliteBus {
    shared: Arc<Shared>,
}

/// What the bus, its subscriptions and deliveries share.
#[derive(Debug)]
pub(crate) struct Shared {
    /// `sqlite bus at PATH`: the backend's name in errors.
    pub(crate) name: Arc<str>,
    pub(crate) config: Arc<SqliteConfig>,
    pub(crate) commands: mpsc::Sender<Command>,
    /// Bytes of queued publishes (bounds the writer's queue in bytes).
    queued_bytes: Arc<Semaphore>,
    /// The writer's turns at the database, shared with outbox
    /// transactions of this process.
    pub(crate) turns: WriteTurns,
    /// Cancelled when the bus closes.
    pub(crate) closed: CancellationToken,
    /// Moves when a commit gave a topic something (see the writer).
    pub(crate) written: Arc<tokio::sync::watch::Sender<u64>>,
    /// Set when another connection of this process committed writes (an
    /// outbox transaction): the writer's next transaction moves the
    /// outbox's messages first, even when the wake-up did not fit the
    /// writer's queue.
    outbox_written: Arc<AtomicBool>,
}

impl Shared {
    pub(crate) fn closed_error(&self, what: &'static str) -> BusError {
        BusError::Closed {
            backend: self.name.to_string(),
            what,
        }
    }

    /// Sends `command` to the writer (waiting for room in its queue) and
    /// waits for the answer `reply` brings.
    pub(crate) async fn call<T>(
        &self,
        what: &'static str,
        command: Command,
        reply: oneshot::Receiver<Result<T, BusError>>,
    ) -> Result<T, BusError> {
        if self.commands.send(command).await.is_err() {
            return Err(self.closed_error(what));
        }
        reply.await.unwrap_or_else(|_| Err(self.closed_error(what)))
    }
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

impl SqliteBus {
    /// Opens (creating if missing) the bus database at `path`, with the
    /// default bounds. Must be called within a Tokio runtime.
    pub async fn open(path: impl Into<std::path::PathBuf>) -> Result<Self, BusError> {
        Self::with_config(SqliteConfig::new(path)).await
    }

    /// Opens the bus database named by a URL, `sqlite://path/to/file.db`.
    pub async fn connect(url: &str) -> Result<Self, BusError> {
        Self::with_config(SqliteConfig::from_url(url)?).await
    }

    /// Opens the bus database of `config` (creating the file and its
    /// directory if missing) and starts its writer thread, which ends when
    /// the bus is closed or its last clone, subscription and delivery are
    /// dropped.
    pub async fn with_config(config: SqliteConfig) -> Result<Self, BusError> {
        config.check()?;
        let name: Arc<str> = format!("sqlite bus at {}", config.path.display()).into();
        if let Some(dir) = config.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                BusError::backend(
                    name.as_ref(),
                    format!(
                        "creating the database directory {} failed: {e}; create it or choose another path",
                        dir.display()
                    ),
                )
            })?;
        }
        let config = Arc::new(config);
        let turns = WriteTurns::default();
        let written = Arc::new(tokio::sync::watch::Sender::new(0));
        let outbox_written = Arc::new(AtomicBool::new(false));
        let writer = Writer::open(
            Arc::clone(&config),
            Arc::clone(&name),
            turns.clone(),
            Arc::clone(&written),
            Arc::clone(&outbox_written),
        )
            .await
            .map_err(|e| {
                BusError::backend(
                    name.as_ref(),
                    format!(
                        "opening the database failed: {e}; check that the path is a writable SQLite file (or does not exist yet)"
                    ),
                )
            })?;
        let (commands, receiver) = mpsc::channel(config.queue_capacity);
        // The writer runs on a thread of its own: it waits on the database
        // statement after statement, and each wait ends the moment the
        // statement does, instead of when a busy runtime next polls it
        // (publishers and consumers of the caller's runtime would
        // otherwise stretch every commit).
        // It needs timers only (the connection has its own I/O thread).
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| {
                BusError::backend(
                    name.as_ref(),
                    format!("starting the writer's runtime failed: {e}"),
                )
            })?;
        std::thread::Builder::new()
            .name("plexus-sqlite-writer".to_owned())
            .spawn(move || runtime.block_on(writer.run(receiver)))
            .map_err(|e| {
                BusError::backend(
                    name.as_ref(),
                    format!(
                        "starting the writer thread failed: {e}; the process may be out of threads"
                    ),
                )
            })?;
        let queued_bytes = Arc::new(Semaphore::new(config.max_queued_bytes));
        Ok(SqliteBus {
            shared: Arc::new(Shared {
                name,
                config,
                commands,
                queued_bytes,
                closed: CancellationToken::new(),
                turns,
                written,
                outbox_written,
            }),
        })
    }

    /// The configuration the bus runs with.
    pub fn config(&self) -> &SqliteConfig {
        &self.shared.config
    }

    /// The order this process's writers of the database take turns in.
    pub(crate) fn write_turns(&self) -> &WriteTurns {
        &self.shared.turns
    }

    /// Tells the bus that another connection of this process committed
    /// writes to its database (an outbox transaction, say): its writer
    /// moves the outbox's messages into their topics before anything it
    /// writes next, and its waiting subscriptions look again at once,
    /// where otherwise they would within [`SqliteConfig::poll_interval`].
    /// Does not wait.
    pub fn notify_written(&self) {
        self.shared.outbox_written.store(true, Ordering::Release);
        // When the queue is full, the bus is busy: its next transaction
        // sees the flag.
        let _ = self.shared.commands.try_send(Command::Wake);
    }

    fn features_of(&self) -> Features {
        Features {
            persistent: true,
            per_key_order: true,
            consumer_groups: true,
            replay: true,
            nack_delay: true,
            max_message_bytes: self.shared.config.max_message_bytes,
            exclusive_groups: true,
        }
    }

    async fn publish_batch(&self, topic: &str, batch: Vec<Message>) -> Result<(), BusError> {
        let shared = &self.shared;
        if shared.closed.is_cancelled() {
            return Err(shared.closed_error("publisher"));
        }
        check_topic(topic)?;
        let limit = shared.config.max_message_bytes;
        let mut bytes = 0usize;
        for message in &batch {
            let size = message_size(message);
            if size > limit {
                return Err(BusError::TooLarge {
                    backend: shared.name.to_string(),
                    topic: topic.to_owned(),
                    id: message.id().to_owned(),
                    size,
                    limit,
                });
            }
            bytes += size.max(1);
        }
        if batch.is_empty() {
            return Ok(());
        }
        let max_batch = shared.config.max_batch_messages;
        if batch.len() > max_batch {
            return Err(BusError::Full {
                topic: topic.to_owned(),
                reason: format!(
                    "a batch of {} messages is more than one publish may carry ({max_batch}, SqliteConfig::max_batch_messages); split it",
                    batch.len()
                ),
            });
        }
        let max_bytes = shared.config.max_queued_bytes;
        let permits = u32::try_from(bytes)
            .ok()
            .filter(|b| *b as usize <= max_bytes)
            .ok_or_else(|| BusError::Full {
                topic: topic.to_owned(),
                reason: format!(
                    "a batch of {bytes} bytes is more than the writer queues at once ({max_bytes}, SqliteConfig::max_queued_bytes); split it"
                ),
            })?;
        let permit = tokio::select! {
            permit = Arc::clone(&shared.queued_bytes).acquire_many_owned(permits) => {
                permit.map_err(|_| shared.closed_error("publisher"))?
            }
            () = shared.closed.cancelled() => return Err(shared.closed_error("publisher")),
        };
        let (reply, answer) = oneshot::channel();
        let command = Command::Publish {
            topic: topic.to_owned(),
            batch,
            permit,
            reply,
        };
        shared.call("publisher", command, answer).await
    }

    async fn close_bus(&self) -> Result<(), BusError> {
        let shared = &self.shared;
        shared.closed.cancel();
        let (reply, done) = oneshot::channel();
        if shared.commands.send(Command::Close { reply }).await.is_ok() {
            // Answered once everything queued before is committed and the
            // connection is closed; a writer already gone drops it.
            let _ = done.await;
        }
        Ok(())
    }
}

impl Publisher for SqliteBus {
    fn publish<'a>(
        &'a self,
        topic: &'a str,
        batch: Vec<Message>,
    ) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(self.publish_batch(topic, batch))
    }

    fn close(&self) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(self.close_bus())
    }

    fn features(&self) -> Features {
        self.features_of()
    }
}

impl Subscriber for SqliteBus {
    fn subscribe<'a>(
        &'a self,
        topic: &'a str,
        options: SubscribeOptions,
    ) -> BoxFuture<'a, Result<Subscription, BusError>> {
        Box::pin(async move {
            let shared = &self.shared;
            if shared.closed.is_cancelled() {
                return Err(shared.closed_error("subscriber"));
            }
            check_topic(topic)?;
            options.check(&shared.name, &self.features_of())?;
            if options.exclusive {
                exclusive::open(Arc::clone(shared), topic, options).await
            } else {
                subscription::open(Arc::clone(shared), topic, options).await
            }
        })
    }

    fn close(&self) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(self.close_bus())
    }

    fn features(&self) -> Features {
        self.features_of()
    }
}
