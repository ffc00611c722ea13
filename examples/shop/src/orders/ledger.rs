//! [`OrderLedger`]: the durable record of placed orders, and their
//! `OrderPlaced` events in the same transaction (the transactional
//! outbox).
//!
//! Placing an order is one SQLite transaction on the orders database,
//! which is also a plexus SQLite bus: the order row, the customer's
//! credit check, and the event appended to [`ORDER_PLACED_TOPIC`]
//! through [`SqliteOutbox`]. Either all of it commits or none of it: an
//! order refused by the credit check (rolled back) has no event, and an
//! order stored always has one. A relay
//! ([`Forwarder`](plexus_bus::forward::Forwarder)) takes the events from
//! the orders database to the shop's bus.

use std::time::Duration;

use plexus_sqlite::{SqliteBus, SqliteOutbox};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use tonic::Status;

use super::events::{ORDER_PLACED_TOPIC, OrderPlaced};

/// The orders table, beside the bus's tables in the same file.
const TABLE: &str = "CREATE TABLE IF NOT EXISTS shop_orders (
    order_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    total_cents INTEGER NOT NULL
)";

/// Connections of the ledger's pool (SQLite has one writer at a time).
const CONNECTIONS: u32 = 4;

/// The orders database with its outbox (see the module).
#[derive(Debug, Clone)]
pub struct OrderLedger {
    pool: SqlitePool,
    outbox: SqliteOutbox,
}

impl OrderLedger {
    /// A ledger on the file of `bus` (the relay's source).
    pub async fn open(bus: &SqliteBus) -> Result<Self, sqlx::Error> {
        let options = SqliteConnectOptions::new()
            .filename(&bus.config().path)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(CONNECTIONS)
            .connect_with(options)
            .await?;
        sqlx::query(TABLE).execute(&pool).await?;
        Ok(OrderLedger {
            pool,
            outbox: SqliteOutbox::for_bus(bus),
        })
    }

    /// Records `order` and its event in one transaction; refused with
    /// `FAILED_PRECONDITION` (nothing kept) when the customer's orders
    /// would pass `credit_limit_cents`.
    pub(super) async fn record(
        &self,
        order: &OrderPlaced,
        credit_limit_cents: u64,
    ) -> Result<(), Status> {
        let message = order
            .to_message()
            .map_err(|e| Status::internal(format!("cannot build the OrderPlaced event: {e}")))?;
        let failed = |doing: &str, e: &dyn std::fmt::Display| {
            Status::unavailable(format!(
                "order {}: {doing} failed: {e}; nothing was stored, place it again",
                order.order_id
            ))
        };
        let total = i64::try_from(order.total_cents)
            .map_err(|_| Status::invalid_argument("total_cents: too large to store"))?;
        let mut tx = self
            .outbox
            .begin(&self.pool)
            .await
            .map_err(|e| failed("starting the transaction", &e))?;
        sqlx::query(
            "INSERT INTO shop_orders (order_id, customer_id, total_cents) VALUES (?1, ?2, ?3)",
        )
        .bind(&order.order_id)
        .bind(&order.customer_id)
        .bind(total)
        .execute(&mut **tx)
        .await
        .map_err(|e| failed("storing the order", &e))?;
        self.outbox
            .publish(&mut tx, ORDER_PLACED_TOPIC, std::slice::from_ref(&message))
            .await
            .map_err(|e| failed("writing its OrderPlaced event", &e))?;
        // Checked with the order and its event written, as a constraint
        // would be: the rollback takes both back.
        let owed: i64 = sqlx::query_scalar(
            "SELECT coalesce(sum(total_cents), 0) FROM shop_orders WHERE customer_id = ?1",
        )
        .bind(&order.customer_id)
        .fetch_one(&mut **tx)
        .await
        .map_err(|e| failed("checking the customer's credit", &e))?;
        if u64::try_from(owed).unwrap_or(u64::MAX) > credit_limit_cents {
            tx.rollback()
                .await
                .map_err(|e| failed("rolling back", &e))?;
            return Err(Status::failed_precondition(format!(
                "customer {}: this order takes their orders to {owed} cents, past their credit limit of {} cents; nothing was stored",
                order.customer_id, credit_limit_cents
            )));
        }
        self.outbox
            .commit(tx)
            .await
            .map_err(|e| failed("committing", &e))
    }

    /// Orders stored (committed).
    pub async fn stored(&self) -> Result<u64, sqlx::Error> {
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM shop_orders")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
