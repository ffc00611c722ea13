//! [`PostgresBus`]: the [`Publisher`] and [`Subscriber`] on PostgreSQL.

mod answers;
mod exclusive;
pub(crate) mod publish;
mod row;
pub(crate) mod schema;
mod setup;
pub(crate) mod statements;
mod subscription;
mod wake;

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use plexus_core::Message;
use plexus_core::bus::{
    BoxFuture, BusError, Features, Publisher, SubscribeOptions, Subscriber, Subscription,
    check_topic,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::PostgresConfig;
use answers::Answer;
use statements::Statements;
use wake::{Notifier, Wakes};

/// Answers queued for the answering task at most; answering waits for
/// room beyond that.
const ANSWER_QUEUE: usize = 8192;
/// How long closing waits for the database to take back this bus's
/// leases and private groups.
const CLOSE_LIMIT: Duration = Duration::from_secs(5);

/// The plexus bus on a PostgreSQL database: a [`Publisher`] and a
/// [`Subscriber`]. Clones share the connection pool; every bus on the same
/// database and schema (in this process or another) shares the topics and
/// groups.
///
/// See the [crate documentation](crate) for how it stores and delivers.
#[derive(Debug, Clone)]
pub struct PostgresBus {
    shared: Arc<Shared>,
}

/// What the bus, its subscriptions and deliveries share.
#[derive(Debug)]
pub(crate) struct Shared {
    /// `postgres bus at HOST/DB (schema S)`: the backend's name in errors.
    pub(crate) name: Arc<str>,
    pub(crate) config: PostgresConfig,
    pub(crate) pool: PgPool,
    pub(crate) sql: Arc<Statements>,
    /// This bus's name on its leases (`pending.owner`).
    pub(crate) owner: String,
    pub(crate) answers: mpsc::Sender<Answer>,
    pub(crate) wakes: Arc<Wakes>,
    pub(crate) notifier: Arc<Notifier>,
    /// The server process of the bus's notification sender (0: none).
    pub(crate) sender: Arc<AtomicU32>,
    /// Cancelled when the bus closes.
    pub(crate) closed: CancellationToken,
    /// Private groups of live subscriptions, removed when the bus closes.
    pub(crate) private_groups: Mutex<HashSet<i64>>,
    /// Held shared by every claim running; closing takes it exclusively,
    /// so that no claim is left running (leasing messages, holding the
    /// schema's locks) once `close` returns.
    pub(crate) claims: Arc<tokio::sync::RwLock<()>>,
    listening: AtomicBool,
    /// Stops the background tasks when the last holder goes.
    tasks: CancellationToken,
    _stop_tasks: DropGuard,
}

impl Shared {
    pub(crate) fn closed_error(&self, what: &'static str) -> BusError {
        BusError::Closed {
            backend: self.name.to_string(),
            what,
        }
    }

    /// The error for a failed statement: [`BusError::Closed`] once the
    /// bus is closed, else what failed and the server's reason.
    pub(crate) fn failed(&self, what: &str, error: sqlx::Error, side: &'static str) -> BusError {
        if matches!(error, sqlx::Error::PoolClosed) || self.closed.is_cancelled() {
            return self.closed_error(side);
        }
        BusError::backend(
            self.name.as_ref(),
            format!("{what} failed: {error}; check that the server is up and reachable"),
        )
    }

    /// Starts the wake-up listener, once.
    fn listen(&self) {
        if self.listening.swap(true, Ordering::AcqRel) {
            return;
        }
        tokio::spawn(wake::listen(
            self.pool.clone(),
            self.config.schema.clone(),
            Arc::clone(&self.wakes),
            Arc::clone(&self.sender),
            self.tasks.clone(),
        ));
    }

    pub(crate) fn forget_private(&self, group: i64) {
        self.private_groups
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&group);
    }
}

impl PostgresBus {
    /// Opens the bus on the database named by a URL,
    /// `postgres://user@host[:port]/database[?schema=NAME]` (see
    /// [`PostgresConfig::from_url`]).
    pub async fn connect(url: &str) -> Result<Self, BusError> {
        Self::with_config(PostgresConfig::from_url(url)?).await
    }

    /// Opens the bus of `config`: connects, creates the schema's tables and
    /// functions if missing, and starts the tasks that answer deliveries
    /// and send wake-ups (they end when the bus is closed or its last
    /// clone, subscription and delivery are dropped). Must be called
    /// within a Tokio runtime.
    pub async fn with_config(config: PostgresConfig) -> Result<Self, BusError> {
        config.check()?;
        let options = PgConnectOptions::from_str(&config.url).map_err(|e| {
            BusError::invalid(
                "url",
                format!("`{}` is not a PostgreSQL URL sqlx accepts: {e}", config.url),
            )
        })?;
        let name: Arc<str> = format!(
            "postgres bus at {}:{}/{} (schema {})",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or("postgres"),
            config.schema
        )
        .into();
        // One connection first, for the server's own reason when it fails
        // (the pool would only say that it timed out).
        let connect_failed = |reason: String| {
            BusError::backend(
                name.as_ref(),
                format!(
                    "connecting failed: {reason}; check that PostgreSQL is up and the URL (user, database) is right"
                ),
            )
        };
        match tokio::time::timeout(config.connect_timeout, options.connect()).await {
            Ok(Ok(probe)) => {
                let _ = probe.close().await;
            }
            Ok(Err(e)) => return Err(connect_failed(e.to_string())),
            Err(_) => {
                return Err(connect_failed(format!(
                    "no answer within {:?} (PostgresConfig::connect_timeout)",
                    config.connect_timeout
                )));
            }
        }
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .min_connections(0)
            .acquire_timeout(config.connect_timeout)
            .test_before_acquire(false)
            .connect_lazy_with(options);
        let sql = Arc::new(Statements::new(&config.schema));
        setup::ensure(&pool, &sql).await.map_err(|e| {
            BusError::backend(
                name.as_ref(),
                format!(
                    "creating the bus's tables in schema `{}` failed: {e}; the user needs CREATE on the database",
                    config.schema
                ),
            )
        })?;
        let tasks = CancellationToken::new();
        let (answers, queue) = mpsc::channel(ANSWER_QUEUE);
        tokio::spawn(answers::run(
            pool.clone(),
            Arc::clone(&sql),
            Arc::clone(&name),
            queue,
            answers.downgrade(),
            tasks.clone(),
        ));
        let notifier = Arc::new(Notifier::default());
        let sender = Arc::new(AtomicU32::new(0));
        tokio::spawn(wake::notify(
            pool.clone(),
            config.schema.clone(),
            Arc::clone(&notifier),
            sql.notify,
            Arc::clone(&sender),
            tasks.clone(),
        ));
        tokio::spawn(setup::prune(
            pool.clone(),
            Arc::clone(&sql),
            config.clone(),
            tasks.clone(),
        ));
        Ok(PostgresBus {
            shared: Arc::new(Shared {
                name,
                config,
                pool,
                sql,
                owner: uuid::Uuid::now_v7().to_string(),
                answers,
                wakes: Arc::new(Wakes::default()),
                notifier,
                sender,
                closed: CancellationToken::new(),
                private_groups: Mutex::new(HashSet::new()),
                claims: Arc::new(tokio::sync::RwLock::new(())),
                listening: AtomicBool::new(false),
                _stop_tasks: tasks.clone().drop_guard(),
                tasks,
            }),
        })
    }

    /// The configuration the bus runs with.
    pub fn config(&self) -> &PostgresConfig {
        &self.shared.config
    }

    /// Deletes what retention would delete now (see
    /// [`PostgresConfig::retention_interval`]): messages every group
    /// acknowledged, messages older than [`PostgresConfig::max_age`],
    /// abandoned private groups. Returns the messages deleted.
    pub async fn prune(&self) -> Result<u64, BusError> {
        setup::prune_once(&self.shared.pool, &self.shared.sql, &self.shared.config)
            .await
            .map_err(|e| self.shared.failed("pruning", e, "publisher"))
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

    async fn close_bus(&self) -> Result<(), BusError> {
        let shared = &self.shared;
        if shared.closed.is_cancelled() {
            return Ok(());
        }
        shared.closed.cancel();
        let private: Vec<i64> = shared
            .private_groups
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .collect();
        let tidy = async {
            // Claims under way end first (their leases are then returned
            // with the others); none starts after.
            let _quiet = shared.claims.write().await;
            // Leases of this bus go to other members at once; its private
            // groups go.
            sqlx::query(&shared.sql.release)
                .bind(&shared.owner)
                .execute(&shared.pool)
                .await?;
            for group in private {
                sqlx::query(&shared.sql.leave)
                    .bind(group)
                    .execute(&shared.pool)
                    .await?;
            }
            Ok::<(), sqlx::Error>(())
        };
        match tokio::time::timeout(CLOSE_LIMIT, tidy).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(%error, "returning a closed plexus bus's leases failed; they come back at their ack deadline")
            }
            Err(_) => tracing::warn!(
                "returning a closed plexus bus's leases took over {CLOSE_LIMIT:?}; they come back at their ack deadline"
            ),
        }
        shared.tasks.cancel();
        // Waits for publishes in progress to give their connections back.
        shared.pool.close().await;
        Ok(())
    }
}

impl Publisher for PostgresBus {
    fn publish<'a>(
        &'a self,
        topic: &'a str,
        batch: Vec<Message>,
    ) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(publish::publish(&self.shared, topic, batch))
    }

    fn close(&self) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(self.close_bus())
    }

    fn features(&self) -> Features {
        self.features_of()
    }
}

impl Subscriber for PostgresBus {
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
            shared.listen();
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
