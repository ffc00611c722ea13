//! What was published and acknowledged survives closing, dropping and
//! reopening the database; concurrent publishers all land.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{TempDb, next_within, nothing_within, number, numbered, scalar};
use plexus_core::Message;
use plexus_core::bus::{Publisher, SubscribeOptions, Subscriber};

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_group_continues_after_reopening_where_its_acks_left_it() {
    let db = TempDb::new();
    let bus = db.open().await;
    // A 30 s ack deadline: closing the bus returns its leases at once, so
    // the held messages come back well within the 10 s waits below.
    let options = SubscribeOptions::group("g")
        .max_in_flight(100)
        .ack_deadline(Duration::from_secs(30));
    let mut g = bus.subscribe("t", options.clone()).await.unwrap();
    bus.publish("t", (0..100).map(|n| numbered(n, None)).collect())
        .await
        .unwrap();
    let mut held = Vec::new();
    let mut acked = HashSet::new();
    for _ in 0..60 {
        let delivery = next_within(&mut g, WAIT).await;
        let n = number(delivery.message());
        if n.is_multiple_of(2) {
            delivery.ack().await.unwrap();
            acked.insert(n);
        } else {
            held.push(delivery); // out with the member when the bus closes
        }
    }
    Publisher::close(&bus).await.unwrap();
    drop(held);
    drop(g);

    // Reopened: the acked messages are gone for the group; the held ones
    // come back at their ack deadline; the rest in order.
    let bus = db.open().await;
    let mut g = bus.subscribe("t", options).await.unwrap();
    let mut seen = HashSet::new();
    while seen.len() < 100 - acked.len() {
        let delivery = next_within(&mut g, WAIT).await;
        let n = number(delivery.message());
        assert!(
            !acked.contains(&n),
            "message {n} was acknowledged before the restart"
        );
        assert!(seen.insert(n), "message {n} delivered twice");
        delivery.ack().await.unwrap();
    }
    nothing_within(&mut g, Duration::from_millis(700)).await;
}

#[tokio::test]
async fn a_bus_dropped_without_close_keeps_what_it_accepted() {
    let db = TempDb::new();
    {
        let bus = db.open().await;
        bus.publish("t", (0..10).map(|n| numbered(n, None)).collect())
            .await
            .unwrap();
    }
    let bus = db.open().await;
    let mut g = bus
        .subscribe("t", SubscribeOptions::group("g").from_earliest())
        .await
        .unwrap();
    for n in 0..10 {
        let delivery = next_within(&mut g, WAIT).await;
        assert_eq!(number(delivery.message()), n);
        delivery.ack().await.unwrap();
    }
}

#[tokio::test]
async fn another_process_writes_are_seen_by_polling() {
    // Two buses on one file stand for two processes: the subscriber's bus
    // hears nothing in-process from the other's publishes.
    let db = TempDb::new();
    let mut config = db.config();
    config.poll_interval = Duration::from_millis(50);
    let reader = db.open_with(config).await;
    let writer = db.open().await;
    let mut g = reader
        .subscribe("t", SubscribeOptions::group("g"))
        .await
        .unwrap();
    writer.publish("t", vec![numbered(7, None)]).await.unwrap();
    let delivery = next_within(&mut g, Duration::from_secs(5)).await;
    assert_eq!(number(delivery.message()), 7);
    delivery.ack().await.unwrap();
}

/// Runs `publishers` tasks each publishing `batches` batches of `size`
/// messages of `bytes` payload bytes; returns messages per second.
async fn publish_concurrently(
    bus: &plexus_sqlite::SqliteBus,
    publishers: usize,
    batches: usize,
    size: usize,
    bytes: usize,
) -> f64 {
    let payload = bytes::Bytes::from(vec![b'x'; bytes]);
    let prepared: Vec<Vec<Vec<Message>>> = (0..publishers)
        .map(|p| {
            (0..batches)
                .map(|b| {
                    (0..size)
                        .map(|i| {
                            Message::builder("bench.event", "/bench")
                                .id(format!("p{p}-b{b}-{i}"))
                                .payload("application/octet-stream", payload.clone())
                                .build()
                                .unwrap()
                        })
                        .collect()
                })
                .collect()
        })
        .collect();
    let bus = Arc::new(bus.clone());
    let started = Instant::now();
    let tasks: Vec<_> = prepared
        .into_iter()
        .map(|batches| {
            let bus = Arc::clone(&bus);
            tokio::spawn(async move {
                for batch in batches {
                    bus.publish("load", batch).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    (publishers * batches * size) as f64 / started.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishers_all_land() {
    let db = TempDb::new();
    let bus = db.open().await;
    publish_concurrently(&bus, 16, 10, 100, 64).await;
    Publisher::close(&bus).await.unwrap();
    assert_eq!(
        scalar(&db.path, "SELECT count(DISTINCT id) FROM plexus_messages").await,
        16_000
    );
    // Each batch is stored contiguously and in its order; the batches of
    // one publisher in the order they were published.
    let ids = ids_in_order(&db.path).await;
    assert_eq!(ids.len(), 16_000);
    let mut expected_next: std::collections::HashMap<String, (usize, usize)> = Default::default();
    let mut current: Option<(String, usize, usize)> = None;
    for id in &ids {
        let mut parts = id.split('-');
        let publisher = parts.next().unwrap().to_owned();
        let batch: usize = parts.next().unwrap()[1..].parse().unwrap();
        let index: usize = parts.next().unwrap().parse().unwrap();
        match &current {
            Some((p, b, i)) if *p == publisher && *b == batch => {
                assert_eq!(
                    index,
                    i + 1,
                    "batch {publisher}-b{batch} interleaved at {id}"
                )
            }
            _ => {
                assert_eq!(
                    index, 0,
                    "batch {publisher}-b{batch} starts at its first message"
                );
                let next = expected_next.entry(publisher.clone()).or_insert((0, 0));
                assert_eq!(batch, next.0, "{publisher}'s batches in publish order");
                next.0 += 1;
            }
        }
        current = Some((publisher, batch, index));
    }
}

async fn ids_in_order(path: &std::path::Path) -> Vec<String> {
    use sqlx::Connection;
    let mut connection = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query_scalar("SELECT id FROM plexus_messages ORDER BY seq")
        .fetch_all(&mut connection)
        .await
        .unwrap()
}
