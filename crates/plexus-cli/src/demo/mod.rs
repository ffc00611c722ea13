//! `plexus demo`: starts the reference shop on loopback, drives a scripted
//! workload through every call kind, and prints a report whose every row
//! names the invariant it checked. Exits 0 only when all of them hold.
//!
//! The services run in this process on real sockets (plexus
//! [`Server`](plexus_rpc::Server)s on `127.0.0.1:0`) and are called through
//! plexus clients ([`ClientBuilder`]), so every call crosses the plexus
//! server and client stacks: deadline, cancellation, trace context, limits.
//!
//! - [`orders`]: unary, server streaming and client streaming workloads;
//! - [`support`]: bidirectional chats;
//! - [`faults`]: a call past its deadline, a call cancelled by its client;
//! - [`rest`]: the REST/JSON gateway in front of orders (HTTP → gRPC),
//!   Server-Sent Events, and client mistakes;
//! - [`outbox`]: orders stores each order with its `OrderPlaced` event in
//!   one SQLite transaction, a relay takes the events to the bus, and
//!   inventory applies each once through its inbox; one order refused
//!   inside its transaction must leave no event;
//! - [`notifications`]: publish/subscribe on the bus (`--bus URL`, the
//!   in-memory one by default): every `OrderPlaced` reaches each consumer
//!   group once, members share them;
//! - [`report`]: latencies and the table.

mod faults;
mod notifications;
mod orders;
mod outbox;
mod report;
mod rest;
mod support;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use plexus_rpc::client::ClientBuilder;
use shop::Running;
use shop::notifications::{Notifications, NotificationsConfig};
use shop::orders::v1::orders_client::OrdersClient;
use shop::orders::{OrdersConfig, OrdersMetrics};
use shop::support::v1::support_client::SupportClient;
use shop::support::{SupportConfig, SupportMetrics};
use tokio::time::Instant;

use report::Row;

use crate::bus::open::{Bus, open};

/// Orders placed one by one (each then read back).
const PLACE_ORDERS: usize = 200;
/// Orders watched to DELIVERED, at once.
const WATCHES: usize = 20;
/// Fulfilment step of those watches.
const WATCH_STEP_MILLIS: u32 = 2;
/// Orders in the one bulk import.
const IMPORT_ORDERS: usize = 500;
/// Chats open at once, and customer messages in each.
const CHATS: usize = 20;
const CHAT_MESSAGES: usize = 5;
/// Orders placed and read back through the REST gateway.
const REST_ORDERS: usize = 50;
/// Orders watched to DELIVERED over Server-Sent Events.
const REST_WATCHES: usize = 5;
/// Budget of the call that must miss its deadline.
const DEADLINE_BUDGET: Duration = Duration::from_millis(50);

/// Arguments of `plexus demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep the services running after the report and print their addresses.
    #[arg(long)]
    keep_running: bool,
    /// The bus the shop's events travel on (`memory:`, `sqlite://PATH`,
    /// `nats://HOST:PORT`).
    #[arg(long, default_value = "memory:")]
    bus: String,
}

/// The shop's services, running in this process.
struct Shop {
    bus: Bus,
    notifications: Notifications,
    pipeline: outbox::Pipeline,
    orders: Running<OrdersMetrics>,
    support: Running<SupportMetrics>,
    gateway: plexus_gateway::GatewayHandle,
}

impl Shop {
    async fn start(bus_url: &str) -> anyhow::Result<Shop> {
        let bus = open(bus_url).await?;
        let notifications = shop::notifications::start(
            Arc::clone(&bus.subscriber),
            Arc::clone(&bus.publisher),
            NotificationsConfig::default(),
        );
        if let Err(never) = notifications.subscribed().await {
            let why = match notifications.shutdown().await {
                Err(error) => format!("{error}"),
                Ok(()) => never.to_string(),
            };
            anyhow::bail!("the notification groups could not subscribe on `{bus_url}`: {why}");
        }
        let pipeline = outbox::Pipeline::start(&bus).await?;
        let orders =
            shop::orders::start_with_outbox(OrdersConfig::default(), pipeline.ledger.clone())
                .await
                .context("starting the orders service on 127.0.0.1")?;
        let mut support = SupportConfig::default();
        support.orders_url = Some(orders.url());
        let support = shop::support::start(support)
            .await
            .context("starting the support service on 127.0.0.1")?;
        let gateway = shop::gateway::start(&orders.url())
            .await
            .context("starting the REST gateway on 127.0.0.1")?;
        Ok(Shop {
            bus,
            notifications,
            pipeline,
            orders,
            support,
            gateway,
        })
    }

    async fn shutdown(self) -> anyhow::Result<()> {
        self.gateway
            .shutdown()
            .await
            .context("stopping the REST gateway")?;
        self.support
            .shutdown()
            .await
            .context("stopping the support service")?;
        self.orders
            .shutdown()
            .await
            .context("stopping the orders service")?;
        self.pipeline.shutdown().await?;
        self.notifications
            .shutdown()
            .await
            .context("stopping the notification groups")?;
        self.bus.close().await?;
        Ok(())
    }
}

/// Runs `plexus demo`.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let shop = Shop::start(&args.bus).await?;
    println!(
        "plexus demo: the shop on loopback: orders {}, support {}, REST gateway {}\n",
        shop.orders.url(),
        shop.support.url(),
        shop.gateway.url()
    );
    let (rows, sample_order) = drive(&shop).await?;
    print!("{}", report::table(&rows));
    let failed: Vec<String> = rows
        .iter()
        .filter(|r| !r.holds())
        .map(|r| format!("{} ({})", r.pattern, r.invariant.claim))
        .collect();
    if !failed.is_empty() {
        anyhow::bail!(
            "{} invariant(s) failed: {}",
            failed.len(),
            failed.join(", ")
        );
    }
    println!(
        "\nevery invariant holds; {:.2} s in all",
        started.elapsed().as_secs_f64()
    );
    if args.keep_running {
        keep_running(&shop, &sample_order).await?;
    }
    shop.shutdown().await
}

/// Drives the workload; returns the rows and an order id to show in hints.
async fn drive(shop: &Shop) -> anyhow::Result<(Vec<Row>, String)> {
    let orders_client = OrdersClient::new(
        ClientBuilder::new(shop.orders.url())
            .connect()
            .await
            .context("connecting to the orders service")?,
    );
    let support_client = SupportClient::new(
        ClientBuilder::new(shop.support.url())
            .connect()
            .await
            .context("connecting to the support service")?,
    );
    let metrics = shop.orders.metrics();

    let (unary, ids) = orders::unary(&orders_client, PLACE_ORDERS).await;
    if ids.len() < WATCHES + 2 {
        anyhow::bail!(
            "only {} of {PLACE_ORDERS} orders were placed; the rest of the demo needs {}: {}",
            ids.len(),
            WATCHES + 2,
            unary.invariant.violation.as_deref().unwrap_or_default()
        );
    }
    let server_streaming =
        orders::server_streaming(&orders_client, &ids[..WATCHES], WATCH_STEP_MILLIS).await;
    let client_streaming = orders::client_streaming(&orders_client, IMPORT_ORDERS).await;
    let bidi = support::bidi(&support_client, CHATS, CHAT_MESSAGES, &ids).await;
    let deadline = faults::deadline(&orders_client, metrics, &ids[WATCHES], DEADLINE_BUDGET).await;
    let cancellation = faults::cancellation(&orders_client, metrics, &ids[WATCHES + 1]).await;

    let http = rest::client()?;
    let base = shop.gateway.url();
    let (rest_unary, rest_ids) = rest::place_and_read(&http, &base, REST_ORDERS).await;
    let watched = &rest_ids[..REST_WATCHES.min(rest_ids.len())];
    let rest_watch = rest::watch(&http, &base, watched, WATCH_STEP_MILLIS).await;
    let rest_mistakes = rest::mistakes(&http, &base).await;
    let refused = outbox::over_limit(&orders_client).await;
    let placed = metrics.orders_placed();
    let pubsub = notifications::rows(shop.notifications.metrics(), placed).await;
    let sample = ids[ids.len() - 1].clone();
    let mut rows = vec![
        unary,
        server_streaming,
        client_streaming,
        bidi,
        deadline,
        cancellation,
        rest_unary,
        rest_watch,
        rest_mistakes,
    ];
    rows.extend(shop.pipeline.rows(placed, refused).await?);
    rows.extend(pubsub);
    Ok((rows, sample))
}

async fn keep_running(shop: &Shop, order_id: &str) -> anyhow::Result<()> {
    // Listen for Ctrl-C before saying so: an interrupt that arrives between
    // the message and the listener would otherwise kill the process.
    let interrupted = interrupt_listener()?;
    let orders = shop.orders.local_addr();
    let support = shop.support.local_addr();
    let gateway = shop.gateway.local_addr();
    println!(
        "\nThe shop keeps running; Ctrl-C stops it.\n\
         \x20 orders   shop.orders.v1.Orders     http://{orders}\n\
         \x20 support  shop.support.v1.Support   http://{support}\n\
         \x20 gateway  REST/JSON                 http://{gateway}\n\
         Try:\n\
         \x20 plexus call {orders} --list\n\
         \x20 plexus call {orders} shop.orders.v1.Orders/GetOrder -d '{{\"order_id\":\"{order_id}\"}}'\n\
         \x20 plexus call {orders} shop.orders.v1.Orders/WatchOrder -d '{{\"order_id\":\"{order_id}\",\"step_millis\":500}}'\n\
         \x20 plexus call {support} shop.support.v1.Support/Chat -d -    # then type {{\"text\":\"where is {order_id}?\"}}\n\
         \x20 plexus call http://{gateway}/v1/orders/{order_id}\n\
         \x20 plexus call http://{gateway}/v1/orders/{order_id}/watch?stepMillis=500\n\
         \x20 curl http://{gateway}/openapi.json"
    );
    interrupted.await;
    println!("stopping the shop");
    Ok(())
}

/// Registers for SIGINT now and returns a future that resolves on it.
#[cfg(unix)]
fn interrupt_listener() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupts = signal(SignalKind::interrupt()).context("listening for Ctrl-C")?;
    Ok(async move {
        interrupts.recv().await;
    })
}

/// Registers for Ctrl-C and returns a future that resolves on it.
#[cfg(not(unix))]
fn interrupt_listener() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
