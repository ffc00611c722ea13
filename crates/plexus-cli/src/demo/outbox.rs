//! The transactional outbox and the inbox in the shop: orders stores each
//! order with its `OrderPlaced` event in one SQLite transaction (its own
//! database, a plexus SQLite bus), a relay takes the events to the shop's
//! bus, and inventory reserves stock for each through its inbox.
//!
//! Rows: the outbox (every committed event relayed, lag from the event's
//! time in the transaction to the bus's acceptance), the inbox (each
//! order reserved once though 5 acknowledgements are lost on purpose and
//! their events come again), and one injected failure: an order past its
//! customer's credit limit, refused inside its transaction after its
//! event was written, whose event must never leave.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use plexus_bus::forward::{Forwarded, Forwarder};
use plexus_bus::lag::LagMeter;
use plexus_core::bus::{BusError, Publisher as _};
use plexus_rpc::client::Channel;
use plexus_sqlite::SqliteBus;
use shop::inventory::{Inventory, InventoryConfig};
use shop::orders::v1::orders_client::OrdersClient;
use shop::orders::v1::{LineItem, PlaceOrderRequest};
use shop::orders::{ORDER_PLACED_TOPIC, OrderLedger};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tonic::Code;

use super::report::{Invariant, Latency, Row};
use crate::bus::open::Bus;

/// Acknowledgements the inventory loses on purpose.
const LOST_ACKS: u64 = 5;
/// How long the relay and the inventory may take to catch up.
const CATCH_UP: Duration = Duration::from_secs(10);
/// The customer of the order that must be refused.
const OVER_LIMIT_CUSTOMER: &str = "cus-over-limit";

/// The orders database, its relay, and the inventory.
pub(super) struct Pipeline {
    /// Holds the two databases; removed on drop.
    _dir: tempfile::TempDir,
    orders_bus: SqliteBus,
    pub(super) ledger: OrderLedger,
    lag: LagMeter,
    stop_relay: oneshot::Sender<()>,
    relay: JoinHandle<Result<Forwarded, BusError>>,
    inventory: Inventory,
}

impl Pipeline {
    /// Opens the orders database, starts the relay to `bus` and the
    /// inventory on it (subscribed when this returns).
    pub(super) async fn start(bus: &Bus) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("making a directory for the shop's databases")?;
        let orders_path = dir.path().join("orders.db");
        let orders_bus = SqliteBus::connect(&format!("sqlite://{}", orders_path.display()))
            .await
            .context("opening the orders database")?;
        let ledger = OrderLedger::open(&orders_bus)
            .await
            .context("creating the orders table")?;
        let lag = LagMeter::new();
        let relay = Forwarder::new(
            Arc::new(orders_bus.clone()),
            ORDER_PLACED_TOPIC,
            "relay",
            Arc::clone(&bus.publisher),
            ORDER_PLACED_TOPIC,
        )
        .lag(lag.clone());
        let (stop_relay, stopped) = oneshot::channel::<()>();
        let relay = tokio::spawn(relay.run(async {
            let _ = stopped.await;
        }));
        let mut config = InventoryConfig::default();
        config.lost_acks = LOST_ACKS;
        let inventory = shop::inventory::start(
            Arc::clone(&bus.subscriber),
            Arc::clone(&bus.publisher),
            &dir.path().join("inventory.db"),
            config,
        )
        .await
        .context("opening the inventory database")?;
        if let Err(never) = inventory.subscribed().await {
            anyhow::bail!("the inventory group could not subscribe: {never}");
        }
        Ok(Pipeline {
            _dir: dir,
            orders_bus,
            ledger,
            lag,
            stop_relay,
            relay,
            inventory,
        })
    }

    /// The rows, once the relay and the inventory caught up with the
    /// `placed` orders (at most [`CATCH_UP`]); `refused` is the injected
    /// failure's row.
    pub(super) async fn rows(&self, placed: u64, refused: Row) -> anyhow::Result<Vec<Row>> {
        let metrics = self.inventory.metrics();
        let give_up = Instant::now() + CATCH_UP;
        while Instant::now() < give_up
            && (self.lag.summary().count < placed
                || metrics.applied_count() < placed
                || metrics.duplicates_dropped() < LOST_ACKS.min(placed))
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let stored = self
            .ledger
            .stored()
            .await
            .context("counting stored orders")?;
        let lag = self.lag.summary();
        let mut violations = Vec::new();
        if stored != placed {
            violations.push(format!("{stored} orders stored, {placed} placed"));
        }
        if lag.count != stored {
            violations.push(format!(
                "{} events relayed for {stored} orders stored, within {CATCH_UP:?}",
                lag.count
            ));
        }
        let outbox = Row {
            pattern: "transactional outbox",
            calls: stored,
            ok: lag.count,
            latency: Latency::Percentiles {
                p50: lag.p50,
                p99: lag.p99,
            },
            invariant: Invariant::check(
                "each committed OrderPlaced relayed once (lag: event time → on the bus)",
                &violations,
            ),
        };

        let reservations = self
            .inventory
            .reservations()
            .await
            .context("counting reservations")?;
        let (dropped, lost) = (metrics.duplicates_dropped(), metrics.acks_lost());
        let mut violations = Vec::new();
        if reservations.orders != placed {
            violations.push(format!(
                "{} orders reserved of {placed} placed",
                reservations.orders
            ));
        }
        if reservations.applied_twice != 0 {
            violations.push(format!(
                "{} orders reserved more than once",
                reservations.applied_twice
            ));
        }
        if dropped < lost {
            violations.push(format!(
                "{lost} acknowledgements lost, but only {dropped} redeliveries dropped"
            ));
        }
        let mut latency = Latency::new();
        for delay in metrics.delays() {
            latency.record(delay);
        }
        let inbox = Row {
            pattern: "inbox (inventory)",
            calls: placed,
            ok: reservations.orders,
            latency,
            invariant: Invariant::check(
                format!(
                    "{lost} acks lost, {dropped} redeliveries dropped; effects applied twice: {}",
                    reservations.applied_twice
                ),
                &violations,
            ),
        };

        let mut refused = refused;
        let leaked = self
            .inventory
            .reserved_for(OVER_LIMIT_CUSTOMER)
            .await
            .context("looking for the refused order's reservation")?;
        if leaked > 0 {
            refused.invariant = Invariant::check(
                refused.invariant.claim,
                &[format!(
                    "the rolled-back order's event reached inventory ({leaked} reservation(s))"
                )],
            );
            refused.ok = 0;
        }
        Ok(vec![outbox, inbox, refused])
    }

    /// Stops the relay and the inventory, and closes the orders database.
    pub(super) async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop_relay.send(());
        self.relay
            .await
            .context("the relay task failed")?
            .context("relaying OrderPlaced events")?;
        self.inventory
            .shutdown()
            .await
            .context("stopping the inventory")?;
        self.ledger.close().await;
        self.orders_bus
            .close()
            .await
            .context("closing the orders database")?;
        Ok(())
    }
}

/// Places an order past its customer's credit limit: refused with
/// `FAILED_PRECONDITION`, its order row and event rolled back together.
pub(super) async fn over_limit(client: &OrdersClient<Channel>) -> Row {
    let request = PlaceOrderRequest {
        customer_id: OVER_LIMIT_CUSTOMER.to_owned(),
        items: vec![LineItem {
            sku: "sku-yacht".to_owned(),
            quantity: 10_000,
            unit_price_cents: 100_000_000,
        }],
    };
    let started = Instant::now();
    let outcome = client.clone().place_order(request).await;
    let mut latency = Latency::new();
    latency.record(started.elapsed());
    let violations = match outcome {
        Err(status) if status.code() == Code::FailedPrecondition => Vec::new(),
        Err(status) => vec![format!("ended {:?}: {}", status.code(), status.message())],
        Ok(reply) => vec![format!(
            "placed as {} although past the credit limit",
            reply.into_inner().order_id
        )],
    };
    Row {
        pattern: "rolled-back order",
        calls: 1,
        ok: u64::from(violations.is_empty()),
        latency,
        invariant: Invariant::check(
            "refused in its transaction; its event never left",
            &violations,
        ),
    }
}
