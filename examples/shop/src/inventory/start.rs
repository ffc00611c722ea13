//! Running the inventory group on a [`Router`], its effects and inbox in
//! SQLite.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use plexus_bus::router::{Incoming, NeverRan, Outgoing, Router, RouterError, Running, handler_fn};
use plexus_core::bus::{Publisher, Seen, SubscribeOptions, Subscriber};
use plexus_sqlite::SqliteInbox;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower::BoxError;

use super::GROUP;
use super::metrics::InventoryMetrics;
use crate::orders::{ORDER_PLACED_TOPIC, OrderPlaced};

/// The effects' table: a row per reservation, no unique constraint (see
/// the module).
const TABLE: &str = "CREATE TABLE IF NOT EXISTS reservations (
    order_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    total_cents INTEGER NOT NULL
)";

/// How the inventory runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct InventoryConfig {
    /// Deliveries the member holds at once. Default 4.
    pub max_in_flight: usize,
    /// The first this many events fail after their effect committed (an
    /// ack lost), to be delivered again. Default 0.
    pub lost_acks: u64,
    /// How long the inbox remembers an event. Default 24 h.
    pub dedupe_window: Duration,
    /// How often the inbox's old records are pruned (10,000 at most each
    /// time). Default 60 s.
    pub prune_every: Duration,
}

impl Default for InventoryConfig {
    fn default() -> Self {
        InventoryConfig {
            max_in_flight: 4,
            lost_acks: 0,
            dedupe_window: Duration::from_secs(24 * 3600),
            prune_every: Duration::from_secs(60),
        }
    }
}

/// The inventory, running.
#[derive(Debug)]
pub struct Inventory {
    pool: SqlitePool,
    metrics: Arc<InventoryMetrics>,
    running: Running,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), RouterError>>,
    pruner: JoinHandle<()>,
}

/// The effects in the inventory's database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservations {
    /// Orders with a reservation.
    pub orders: u64,
    /// Orders with more than one: effects applied twice.
    pub applied_twice: u64,
}

/// Starts the inventory group on `subscriber` (dead letters go to
/// `publisher`), its database at `database` (created if missing).
pub async fn start(
    subscriber: Arc<dyn Subscriber>,
    publisher: Arc<dyn Publisher>,
    database: &Path,
    config: InventoryConfig,
) -> Result<Inventory, sqlx::Error> {
    let options = SqliteConnectOptions::new()
        .filename(database)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await?;
    let mut connection = pool.acquire().await?;
    SqliteInbox::install(&mut connection)
        .await
        .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
    sqlx::query(TABLE).execute(&mut *connection).await?;
    drop(connection);

    let metrics = Arc::new(InventoryMetrics::default());
    let inbox = SqliteInbox::new(config.dedupe_window);
    let mut options = SubscribeOptions::group(GROUP).max_in_flight(config.max_in_flight);
    if subscriber.features().replay {
        options = options.from_earliest();
    }
    let handler = reserve(
        pool.clone(),
        inbox.clone(),
        Arc::clone(&metrics),
        config.lost_acks,
    );
    let router =
        Router::new(subscriber, publisher).route(GROUP, ORDER_PLACED_TOPIC, options, handler);
    let running = router.running();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(router.run(async {
        let _ = stopped.await;
    }));
    let pruner = tokio::spawn(prune(pool.clone(), inbox, config.prune_every));
    Ok(Inventory {
        pool,
        metrics,
        running,
        stop,
        task,
        pruner,
    })
}

fn reserve(
    pool: SqlitePool,
    inbox: SqliteInbox,
    metrics: Arc<InventoryMetrics>,
    lost_acks: u64,
) -> impl plexus_bus::router::Handler {
    handler_fn(move |incoming: Incoming| {
        let (pool, inbox, metrics) = (pool.clone(), inbox.clone(), Arc::clone(&metrics));
        async move {
            let event = OrderPlaced::from_message(&incoming.message)?;
            let total = i64::try_from(event.total_cents)?;
            let mut tx = pool.begin().await?;
            if inbox.process(&mut tx, GROUP, &incoming.message).await? == Seen::Again {
                tx.commit().await?;
                metrics.duplicate();
                return Ok::<Vec<Outgoing>, BoxError>(Vec::new());
            }
            sqlx::query(
                "INSERT INTO reservations (order_id, customer_id, total_cents) VALUES (?1, ?2, ?3)",
            )
            .bind(&event.order_id)
            .bind(&event.customer_id)
            .bind(total)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            let delay = SystemTime::now()
                .duration_since(incoming.message.time())
                .unwrap_or_default();
            metrics.applied(delay);
            if metrics.lose_ack(lost_acks) {
                return Err(format!(
                    "order {}: reserved, then the acknowledgement lost on purpose (InventoryConfig::lost_acks)",
                    event.order_id
                )
                .into());
            }
            Ok(Vec::new())
        }
    })
}

/// Prunes the inbox every `every`, until the pool closes.
async fn prune(pool: SqlitePool, inbox: SqliteInbox, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        if pool.is_closed() {
            return;
        }
        let pruned = match pool.acquire().await {
            Ok(mut connection) => inbox.prune(&mut connection).await,
            Err(_) => return,
        };
        if let Err(error) = pruned {
            tracing::warn!(%error, "pruning the inventory's inbox failed; trying again next time");
        }
    }
}

impl Inventory {
    /// Resolves once the member has subscribed (see
    /// [`Notifications::subscribed`](crate::notifications::Notifications::subscribed)).
    pub async fn subscribed(&self) -> Result<(), NeverRan> {
        self.running.clone().wait().await
    }

    /// What the handlers did.
    pub fn metrics(&self) -> &Arc<InventoryMetrics> {
        &self.metrics
    }

    /// The effects in the database.
    pub async fn reservations(&self) -> Result<Reservations, sqlx::Error> {
        let (orders, twice): (i64, i64) = sqlx::query_as(
            "SELECT count(*), coalesce(sum(n > 1), 0) FROM \
             (SELECT count(*) AS n FROM reservations GROUP BY order_id)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(Reservations {
            orders: u64::try_from(orders).unwrap_or(0),
            applied_twice: u64::try_from(twice).unwrap_or(0),
        })
    }

    /// Reservations of `customer_id`'s orders.
    pub async fn reserved_for(&self, customer_id: &str) -> Result<u64, sqlx::Error> {
        let count: i64 =
            sqlx::query_scalar("SELECT count(*) FROM reservations WHERE customer_id = ?1")
                .bind(customer_id)
                .fetch_one(&self.pool)
                .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Stops taking events, lets handlers in progress finish, and waits.
    pub async fn shutdown(self) -> Result<(), RouterError> {
        let _ = self.stop.send(());
        let stopped = match self.task.await {
            Ok(result) => result,
            Err(join) => {
                tracing::error!(error = %join, "the inventory router panicked");
                Ok(())
            }
        };
        self.pruner.abort();
        self.pool.close().await;
        stopped
    }
}
