//! The in-memory bus's bound: a full topic makes publishers wait for room
//! (however many, whatever their batch sizes), then fail with `Full`.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt as _;
use plexus_bus::memory::{MemoryBus, MemoryConfig};
use plexus_core::Message;
use plexus_core::bus::{BusError, Publisher, SubscribeOptions, Subscriber};

const BOUND: Duration = Duration::from_secs(20);

fn numbered(n: usize) -> Message {
    Message::builder("test.Event", "/bounds")
        .header("n", n.to_string())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishers_of_every_batch_size_wait_for_room_and_all_get_through() {
    let bus = MemoryBus::with_config(MemoryConfig {
        topic_capacity: 100,
        publish_timeout: BOUND,
        ..MemoryConfig::default()
    });
    let mut group = bus
        .subscribe("t", SubscribeOptions::group("g").max_in_flight(16))
        .await
        .unwrap();
    // 12 publishers, batches of 7 or of 60, 840 + ... messages in all:
    // far more than the topic holds, so most publishes wait.
    let mut publishers = Vec::new();
    let mut total = 0;
    for p in 0..12usize {
        let size = if p % 3 == 0 { 60 } else { 7 };
        let first = total;
        total += size * 5;
        let bus = bus.clone();
        publishers.push(tokio::spawn(async move {
            for b in 0..5 {
                let start = first + b * size;
                let batch = (start..start + size).map(numbered).collect();
                bus.publish("t", batch).await?;
            }
            Ok::<_, BusError>(())
        }));
    }
    let mut seen = BTreeMap::new();
    while seen.len() < total {
        let delivery = tokio::time::timeout(BOUND, group.next())
            .await
            .unwrap_or_else(|_| panic!("stalled after {} of {total} messages", seen.len()))
            .expect("the subscription ended")
            .unwrap();
        let n: usize = delivery.message().header("n").unwrap().parse().unwrap();
        *seen.entry(n).or_insert(0) += 1;
        delivery.ack().await.unwrap();
    }
    for publisher in publishers {
        publisher.await.unwrap().unwrap();
    }
    assert!(seen.values().all(|&c| c == 1), "each message once");
    assert_eq!(
        seen.keys().copied().collect::<Vec<_>>(),
        (0..total).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_full_topic_nobody_acknowledges_refuses_after_the_publish_timeout() {
    let bus = MemoryBus::with_config(MemoryConfig {
        topic_capacity: 20,
        publish_timeout: Duration::from_millis(100),
        ..MemoryConfig::default()
    });
    let _idle = bus
        .subscribe("t", SubscribeOptions::group("g"))
        .await
        .unwrap();
    bus.publish("t", (0..20).map(numbered).collect())
        .await
        .unwrap();
    let error = bus.publish("t", vec![numbered(20)]).await.unwrap_err();
    assert!(matches!(error, BusError::Full { .. }), "{error:?}");
    assert!(error.to_string().contains("capacity of 20"), "{error}");
}
