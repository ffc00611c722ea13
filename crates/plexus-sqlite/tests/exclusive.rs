//! Exclusive groups on SQLite: one member holds the group and reads it in
//! order with no pending rows; a nack delivers that message and all after
//! it again; a member of another bus instance on the same file stands by
//! and takes over, where the first left off, when it goes.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nack_delivers_that_message_and_all_after_it_again() {
    let db = TempDb::new();
    let bus = db.open().await;
    let mut member = bus.subscribe("orders", exclusive()).await.unwrap();
    // Published after the member subscribed.
    let messages: Vec<_> = (0..20).map(|n| numbered(n, None)).collect();
    bus.publish("orders", messages).await.unwrap();
    assert_eq!(
        take_acking(&mut member, 5).await,
        (0..5).collect::<Vec<_>>()
    );
    let fifth = next_within(&mut member, WAIT).await;
    let sixth = next_within(&mut member, WAIT).await;
    sixth.ack().await.unwrap();
    fifth.nack(Duration::from_millis(50)).await.unwrap();
    let mut again = Vec::new();
    for _ in 5..20 {
        let delivery = next_within(&mut member, WAIT).await;
        again.push((number(delivery.message()), delivery.attempt()));
        delivery.ack().await.unwrap();
    }
    let expected: Vec<(usize, u32)> = (5..20).map(|n| (n, if n <= 6 { 2 } else { 1 })).collect();
    assert_eq!(again, expected);
    Publisher::close(&bus).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_member_of_an_exclusive_group_is_refused() {
    let db = TempDb::new();
    let bus = db.open().await;
    bus.publish("orders", vec![numbered(0, None)])
        .await
        .unwrap();
    let mut holder = bus.subscribe("orders", exclusive()).await.unwrap();
    next_within(&mut holder, WAIT).await.ack().await.unwrap();
    let refused = bus
        .subscribe("orders", SubscribeOptions::group("relay"))
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(&refused, plexus_core::bus::BusError::InvalidOption { option: "exclusive", reason } if reason.contains("is exclusive")),
        "{refused}"
    );
    // Another group of the topic is not affected.
    bus.subscribe("orders", SubscribeOptions::group("audit"))
        .await
        .unwrap();
    Publisher::close(&bus).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_gets_its_whole_max_in_flight_unacked_across_reads() {
    let db = TempDb::new();
    let bus = db.open().await;
    let messages: Vec<_> = (0..1200).map(|n| numbered(n, None)).collect();
    for batch in messages.chunks(100) {
        bus.publish("orders", batch.to_vec()).await.unwrap();
    }
    // More in flight than one read takes (`exclusive::READ_MAX`), none
    // acked until all of them came; no deadline ends the round meanwhile.
    let options = SubscribeOptions::group("relay")
        .exclusive()
        .from_earliest()
        .max_in_flight(1000)
        .ack_deadline(Duration::from_secs(600));
    let mut member = bus.subscribe("orders", options).await.unwrap();
    let mut held = Vec::new();
    for expected in 0..1000 {
        let delivery = next_within(&mut member, WAIT).await;
        assert_eq!(number(delivery.message()), expected);
        held.push(delivery);
    }
    nothing_within(&mut member, Duration::from_millis(200)).await;
    for delivery in held {
        delivery.ack().await.unwrap();
    }
    assert_eq!(
        take_acking(&mut member, 200).await,
        (1000..1200).collect::<Vec<_>>()
    );
    Publisher::close(&bus).await.unwrap();
}
