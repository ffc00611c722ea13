//! The service under measurement: the shop's order placement — an order
//! row and its [`LINES`] line rows in one transaction of the service's
//! own — on PostgreSQL or SQLite, with or without its `OrderPlaced` event
//! written through the outbox in the same transaction.
//!
//! The service's tables live beside the bus's: on PostgreSQL in the
//! run's fresh schema (dropped by [`Shop::close`]), on SQLite in the bus's
//! database file in a temporary folder. The service's connections have
//! the bus's durability: a commit is on disk before it returns
//! (PostgreSQL's default `synchronous_commit`; SQLite in WAL mode with
//! `synchronous=FULL`, as the bus opens its file).
//!
//! On SQLite a transaction that writes through the outbox begins with
//! `SqliteOutbox::begin` (its turn among the process's writers, the bus's
//! own included, then the write lock), as the outbox asks; one without
//! begins as any service's would.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use plexus_core::Message;
use plexus_core::bus::{Publisher, Subscriber};
use serde::Serialize;
use shop::orders::OrderPlaced;
use sqlx::sqlite::SqliteConnection;

use super::setup::{Store, drop_schema, open_postgres, open_sqlite};

/// Lines per order.
pub const LINES: usize = 3;

/// Messages per transaction when filling a topic through the outbox
/// ([`Shop::seed`]).
const SEED_BATCH: usize = 100;

/// Where the outbox writes: the database holding the service's tables
/// and the bus's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// PostgreSQL (`--postgres`): a fresh schema of the run's own.
    Postgres,
    /// SQLite: a database file in a temporary folder.
    Sqlite,
}

impl Source {
    /// The name on the command line and in file names.
    pub fn name(self) -> &'static str {
        match self {
            Source::Postgres => "postgres",
            Source::Sqlite => "sqlite",
        }
    }

    /// Transactions in flight at most when committing at a steady rate:
    /// PostgreSQL commits many at once (group commit); SQLite has one
    /// writer at a time, and more connections would only wait on its lock
    /// (in its busy handler's sleeps).
    pub fn writers(self) -> u32 {
        match self {
            Source::Postgres => 8,
            Source::Sqlite => 1,
        }
    }
}

/// One order of the shop.
#[derive(Debug, Clone)]
pub struct Order {
    id: String,
    customer_id: String,
    /// SKU, quantity, unit price in cents.
    lines: [(String, i64, i64); LINES],
}

impl Order {
    /// Order number `n`.
    fn new(n: u64) -> Self {
        let line = |k: u64| {
            (
                format!("sku-{}", (n * 7 + k) % 500),
                (1 + (n + k) % 3) as i64,
                (500 + (n * 13 + k * 101) % 9500) as i64,
            )
        };
        Order {
            id: format!("ord-{n}"),
            customer_id: format!("cust-{}", n % 1000),
            lines: [line(0), line(1), line(2)],
        }
    }

    /// The order's id (its event's subject).
    pub fn id(&self) -> &str {
        &self.id
    }

    fn total_cents(&self) -> i64 {
        self.lines.iter().map(|(_, qty, price)| qty * price).sum()
    }

    /// The order's `OrderPlaced` event, as the shop publishes it; its
    /// time is now.
    pub fn event(&self) -> anyhow::Result<Message> {
        OrderPlaced {
            order_id: self.id.clone(),
            customer_id: self.customer_id.clone(),
            total_cents: self.total_cents().unsigned_abs(),
        }
        .to_message()
        .with_context(|| format!("building the OrderPlaced event of order {}", self.id))
    }
}

/// The service's database and the bus on it.
pub struct Shop {
    store: Store,
    /// The next order number.
    next: AtomicU64,
}

impl Shop {
    /// Opens the bus on `source` (on PostgreSQL at `postgres`, in schema
    /// `schema`, which must not exist) and creates the service's tables,
    /// with a pool of `connections` for the service.
    pub async fn open(
        source: Source,
        postgres: &str,
        schema: &str,
        connections: u32,
    ) -> anyhow::Result<Self> {
        let store = match source {
            Source::Postgres => open_postgres(postgres, schema, connections).await?,
            Source::Sqlite => open_sqlite(connections).await?,
        };
        Ok(Shop {
            store,
            next: AtomicU64::new(1),
        })
    }

    /// The next order (numbers are never reused within a run).
    pub fn next_order(&self) -> Order {
        Order::new(self.next.fetch_add(1, Ordering::Relaxed))
    }

    /// The bus's subscribing half, for a relay.
    pub fn subscriber(&self) -> Arc<dyn Subscriber> {
        match &self.store {
            Store::Postgres { bus, .. } => Arc::new(bus.clone()),
            Store::Sqlite { bus, .. } => Arc::new(bus.clone()),
        }
    }

    /// Places `order` in one transaction: its row and its lines' rows,
    /// and with `event_topic` its `OrderPlaced` event through the outbox
    /// (built last, so that its time is taken just before the commit).
    /// With an event, returns how long it took from building the event
    /// until the commit returned: the part of the event's commit → publish
    /// lag that is the database's.
    pub async fn place(
        &self,
        order: &Order,
        event_topic: Option<&str>,
    ) -> anyhow::Result<Option<Duration>> {
        let mut built = None;
        match &self.store {
            Store::Postgres {
                outbox,
                pool,
                insert_order,
                insert_lines,
                ..
            } => {
                let mut tx = pool
                    .begin()
                    .await
                    .context("beginning a transaction on PostgreSQL")?;
                let mut lines = sqlx::query(insert_lines).bind(&order.id);
                for (sku, quantity, price) in &order.lines {
                    lines = lines.bind(sku).bind(quantity).bind(price);
                }
                sqlx::query(insert_order)
                    .bind(&order.id)
                    .bind(&order.customer_id)
                    .bind(order.total_cents())
                    .execute(&mut *tx)
                    .await
                    .with_context(|| format!("inserting order {} on PostgreSQL", order.id))?;
                lines
                    .execute(&mut *tx)
                    .await
                    .with_context(|| format!("inserting the lines of order {}", order.id))?;
                if let Some(topic) = event_topic {
                    built = Some(Instant::now());
                    let event = order.event()?;
                    outbox
                        .publish(&mut tx, topic, std::slice::from_ref(&event))
                        .await
                        .with_context(|| {
                            format!("writing the event of order {} to the outbox", order.id)
                        })?;
                }
                tx.commit()
                    .await
                    .with_context(|| format!("committing order {} on PostgreSQL", order.id))?;
            }
            Store::Sqlite { outbox, pool, .. } => match event_topic {
                Some(topic) => {
                    // The outbox's way in: after this process's other
                    // writers (the bus's own), holding the write lock.
                    let mut tx = outbox
                        .begin(pool)
                        .await
                        .context("beginning an outbox transaction on SQLite")?;
                    insert_sqlite(&mut tx, order).await?;
                    built = Some(Instant::now());
                    let event = order.event()?;
                    outbox
                        .publish(&mut tx, topic, std::slice::from_ref(&event))
                        .await
                        .with_context(|| {
                            format!("writing the event of order {} to the outbox", order.id)
                        })?;
                    outbox
                        .commit(tx)
                        .await
                        .with_context(|| format!("committing order {} on SQLite", order.id))?;
                }
                None => {
                    let mut tx = pool
                        .begin()
                        .await
                        .context("beginning a transaction on SQLite")?;
                    insert_sqlite(&mut tx, order).await?;
                    tx.commit()
                        .await
                        .with_context(|| format!("committing order {} on SQLite", order.id))?;
                }
            },
        }
        Ok(built.map(|built| built.elapsed()))
    }

    /// Commits `messages` to `topic` through the outbox, [`SEED_BATCH`]
    /// per transaction and nothing else in them.
    pub async fn seed(&self, topic: &str, messages: &[Message]) -> anyhow::Result<()> {
        for batch in messages.chunks(SEED_BATCH) {
            match &self.store {
                Store::Postgres { outbox, pool, .. } => {
                    let mut tx = pool
                        .begin()
                        .await
                        .context("beginning a transaction on PostgreSQL")?;
                    outbox
                        .publish(&mut tx, topic, batch)
                        .await
                        .with_context(|| {
                            format!("writing {} events to the outbox topic {topic}", batch.len())
                        })?;
                    tx.commit()
                        .await
                        .context("committing events on PostgreSQL")?;
                }
                Store::Sqlite { outbox, pool, .. } => {
                    let mut tx = outbox
                        .begin(pool)
                        .await
                        .context("beginning an outbox transaction on SQLite")?;
                    outbox
                        .publish(&mut tx, topic, batch)
                        .await
                        .with_context(|| {
                            format!("writing {} events to the outbox topic {topic}", batch.len())
                        })?;
                    outbox
                        .commit(tx)
                        .await
                        .context("committing events on SQLite")?;
                }
            }
        }
        Ok(())
    }

    /// Closes the bus and the service's pool; on PostgreSQL drops the
    /// run's schema (the SQLite file goes with the shop).
    pub async fn close(&self) -> anyhow::Result<()> {
        match &self.store {
            Store::Postgres {
                bus,
                pool,
                url,
                schema,
                ..
            } => {
                let closed = Publisher::close(bus).await;
                pool.close().await;
                drop_schema(url, schema).await?;
                closed.context("closing the PostgreSQL bus")
            }
            Store::Sqlite { bus, pool, .. } => {
                let closed = Publisher::close(bus).await;
                pool.close().await;
                closed.context("closing the SQLite bus")
            }
        }
    }
}

/// Inserts `order` and its lines on SQLite.
async fn insert_sqlite(connection: &mut SqliteConnection, order: &Order) -> anyhow::Result<()> {
    let mut lines = sqlx::query(SQLITE_INSERT_LINES).bind(&order.id);
    for (sku, quantity, price) in &order.lines {
        lines = lines.bind(sku).bind(quantity).bind(price);
    }
    sqlx::query(SQLITE_INSERT_ORDER)
        .bind(&order.id)
        .bind(&order.customer_id)
        .bind(order.total_cents())
        .execute(&mut *connection)
        .await
        .with_context(|| format!("inserting order {} on SQLite", order.id))?;
    lines
        .execute(&mut *connection)
        .await
        .with_context(|| format!("inserting the lines of order {}", order.id))?;
    Ok(())
}

const SQLITE_INSERT_ORDER: &str =
    "INSERT INTO orders (id, customer_id, total_cents) VALUES (?1, ?2, ?3)";

const SQLITE_INSERT_LINES: &str = "INSERT INTO order_lines \
     (order_id, line, sku, quantity, unit_price_cents) \
     VALUES (?1, 1, ?2, ?3, ?4), (?1, 2, ?5, ?6, ?7), (?1, 3, ?8, ?9, ?10)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_has_its_lines_and_total() {
        let order = Order::new(7);
        assert_eq!(order.id, "ord-7");
        let total: i64 = order.lines.iter().map(|(_, q, p)| q * p).sum();
        assert!(total > 0);
        let event = order.event().unwrap();
        assert_eq!(event.key(), Some("ord-7"));
    }
}
