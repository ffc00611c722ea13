//! Exclusive groups on SQLite: one member holds the group and reads it in
//! order with no pending rows; a member of another bus instance on the
//! same file stands by and takes over, where the first left off, when it
//! goes. What every backend with exclusive groups does (nacks, deadlines,
//! `max_in_flight`, shared members refused) is the conformance suite's
//! `exclusive_groups`.

mod common;

use std::time::Duration;

use common::{TempDb, next_within, nothing_within, number, numbered, scalar};
use plexus_core::bus::{Publisher, SubscribeOptions, Subscriber, Subscription};

const WAIT: Duration = Duration::from_secs(10);

fn exclusive() -> SubscribeOptions {
    SubscribeOptions::group("relay")
        .exclusive()
        .from_earliest()
        .max_in_flight(50)
}

/// The numbers of the next `count` deliveries, each acked.
async fn take_acking(subscription: &mut Subscription, count: usize) -> Vec<usize> {
    let mut numbers = Vec::with_capacity(count);
    for _ in 0..count {
        let delivery = next_within(subscription, WAIT).await;
        numbers.push(number(delivery.message()));
        delivery.ack().await.unwrap();
    }
    numbers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_member_reads_in_order_and_another_instance_takes_over_where_it_left() {
    let db = TempDb::new();
    let mut config = db.config();
    config.poll_interval = Duration::from_millis(20);
    let bus = db.open_with(config.clone()).await;
    let keys = ["a", "b", "c"];
    let messages: Vec<_> = (0..120).map(|n| numbered(n, Some(keys[n % 3]))).collect();
    for batch in messages.chunks(30) {
        bus.publish("orders", batch.to_vec()).await.unwrap();
    }
    let mut first = bus.subscribe("orders", exclusive()).await.unwrap();
    assert_eq!(
        take_acking(&mut first, 70).await,
        (0..70).collect::<Vec<_>>()
    );
    // A second bus on the same file stands by.
    let other = db.open_with(config).await;
    let mut second = other.subscribe("orders", exclusive()).await.unwrap();
    nothing_within(&mut second, Duration::from_millis(200)).await;
    let mut unanswered = Vec::new();
    for _ in 0..10 {
        unanswered.push(next_within(&mut first, WAIT).await);
    }
    drop(first);
    assert_eq!(
        take_acking(&mut second, 50).await,
        (70..120).collect::<Vec<_>>()
    );
    drop(unanswered);
    // It keeps a position, no rows per message.
    let rows = "SELECT (SELECT count(*) FROM plexus_pending) + (SELECT count(*) FROM plexus_runs)";
    assert_eq!(scalar(&db.path, rows).await, 0);
    Publisher::close(&other).await.unwrap();
    Publisher::close(&bus).await.unwrap();
}
