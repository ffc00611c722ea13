//! orders with an OrderLedger: an order and its OrderPlaced event are
//! stored together or not at all; inventory applies each event once
//! however often it comes.

mod common;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use plexus_bus::memory::MemoryBus;
use plexus_core::bus::{Publisher, SubscribeOptions, Subscriber};
use plexus_sqlite::SqliteBus;
use shop::inventory::{InventoryConfig, Reservations};
use shop::orders::{ORDER_PLACED_TOPIC, OrderLedger, OrderPlaced, OrdersConfig};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_and_its_event_commit_together_and_a_refused_one_leaves_neither() {
    let dir = tempfile::tempdir().unwrap();
    let bus = SqliteBus::connect(&format!(
        "sqlite://{}",
        dir.path().join("orders.db").display()
    ))
    .await
    .unwrap();
    let ledger = OrderLedger::open(&bus).await.unwrap();
    let mut config = OrdersConfig::default();
    config.credit_limit_cents = 1_000;
    let orders = shop::orders::start_with_outbox(config, ledger.clone())
        .await
        .unwrap();
    let client = common::orders_client(&orders).await;

    // 699 cents: within the limit.
    let placed = client
        .clone()
        .place_order(common::sample_order("cus-1"))
        .await
        .unwrap()
        .into_inner();
    // Another 699 takes cus-1 to 1,398: refused, nothing kept.
    let refused = client
        .clone()
        .place_order(common::sample_order("cus-1"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("credit limit"), "{refused:?}");
    // Another customer is unaffected.
    let other = client
        .clone()
        .place_order(common::sample_order("cus-2"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ledger.stored().await.unwrap(), 2);

    let mut events = bus
        .subscribe(
            ORDER_PLACED_TOPIC,
            SubscribeOptions::group("audit").from_earliest(),
        )
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..2 {
        let delivery = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("an event")
            .unwrap()
            .unwrap();
        got.push(OrderPlaced::from_message(delivery.message()).unwrap());
        delivery.ack().await.unwrap();
    }
    let ids: Vec<&str> = got.iter().map(|e| e.order_id.as_str()).collect();
    assert_eq!(ids, [placed.order_id.as_str(), other.order_id.as_str()]);
    assert_eq!(got[0].total_cents, 699);
    // Nothing else: the refused order's event was rolled back with it.
    let more = tokio::time::timeout(Duration::from_millis(300), events.next()).await;
    assert!(more.is_err(), "an event of the refused order: {more:?}");
    drop(events);
    orders.shutdown().await.unwrap();
    ledger.close().await;
    Publisher::close(&bus).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventory_reserves_each_order_once_however_often_it_comes() {
    let dir = tempfile::tempdir().unwrap();
    let bus = MemoryBus::new();
    let mut config = InventoryConfig::default();
    config.lost_acks = 2;
    let inventory = shop::inventory::start(
        Arc::new(bus.clone()),
        Arc::new(bus.clone()),
        &dir.path().join("inventory.db"),
        config,
    )
    .await
    .unwrap();
    inventory.subscribed().await.unwrap();
    let events = common::order_events(20);
    bus.publish(ORDER_PLACED_TOPIC, events.clone())
        .await
        .unwrap();
    // A relay that crashed after publishing sends the first five again.
    bus.publish(ORDER_PLACED_TOPIC, events[..5].to_vec())
        .await
        .unwrap();
    let metrics = Arc::clone(inventory.metrics());
    // 5 published twice, 2 acks lost: 7 deliveries the inbox drops.
    let caught_up = common::wait_until(Duration::from_secs(20), || {
        metrics.applied_count() >= 20 && metrics.duplicates_dropped() >= 7
    })
    .await;
    assert!(
        caught_up,
        "applied {}, dropped {}",
        metrics.applied_count(),
        metrics.duplicates_dropped()
    );
    assert_eq!(
        inventory.reservations().await.unwrap(),
        Reservations {
            orders: 20,
            applied_twice: 0
        }
    );
    assert_eq!(metrics.applied_count(), 20);
    assert_eq!(metrics.duplicates_dropped(), 7);
    assert_eq!(metrics.acks_lost(), 2);
    inventory.shutdown().await.unwrap();
}
