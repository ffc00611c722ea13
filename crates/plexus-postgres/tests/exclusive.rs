//! Exclusive groups: one member holds the group and reads it in order
//! with no pending rows; a nack delivers that message and all after it
//! again, in order; another member stands by and takes over, where the
//! first left off, when it goes; shared and exclusive members do not mix.

mod common;

use std::time::Duration;

use common::{Schema, next};
use futures::StreamExt as _;
use plexus_core::Message;
use plexus_core::bus::{BusError, Publisher, SubscribeOptions, Subscriber, Subscription};
use plexus_postgres::PostgresBus;

fn messages(from: usize, count: usize) -> Vec<Message> {
    (from..from + count)
        .map(|n| {
            Message::builder("dev.plexus.test", "/exclusive")
                .id(format!("m-{n}"))
                .key(format!("k-{}", n % 7))
                .build()
                .unwrap()
        })
        .collect()
}

async fn bus(schema: &Schema, test: &str) -> Option<PostgresBus> {
    match PostgresBus::with_config(schema.config()).await {
        Ok(bus) => Some(bus),
        Err(e) => {
            common::skip_or_fail(test, &e.to_string());
            None
        }
    }
}

fn exclusive() -> SubscribeOptions {
    SubscribeOptions::group("relay")
        .exclusive()
        .from_earliest()
        .max_in_flight(50)
}

/// The ids of the next `count` deliveries, each acked.
async fn take_acking(subscription: &mut Subscription, count: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(count);
    for _ in 0..count {
        let delivery = next(subscription).await;
        ids.push(delivery.message().id().to_owned());
        delivery.ack().await.unwrap();
    }
    ids
}

fn ids(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|n| format!("m-{n}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_member_reads_in_order_with_no_pending_rows_and_the_next_takes_over_where_it_left() {
    let schema = Schema::fresh(&common::machine_url());
    let Some(bus) = bus(&schema, "exclusive_takes_over").await else {
        return;
    };
    for batch in 0..4 {
        bus.publish("orders", messages(batch * 30, 30))
            .await
            .unwrap();
    }
    let mut first = bus.subscribe("orders", exclusive()).await.unwrap();
    assert_eq!(take_acking(&mut first, 70).await, ids(0..70));
    let mut connection = schema.connect().await;
    assert_eq!(
        schema
            .count(&mut connection, "SELECT count(*) FROM {s}.pending")
            .await,
        0,
        "an exclusive group keeps a position, not a row per message"
    );
    // A second member stands by: nothing reaches it while the first holds
    // the group.
    let second_bus = bus.clone();
    let mut second = second_bus.subscribe("orders", exclusive()).await.unwrap();
    let quiet = tokio::time::timeout(Duration::from_millis(300), second.next()).await;
    assert!(quiet.is_err(), "a member on stand-by got a delivery");
    // The first takes 10 more without acking them, and goes: the second
    // starts after the last message acked in order.
    let mut unanswered = Vec::new();
    for _ in 0..10 {
        unanswered.push(next(&mut first).await);
    }
    drop(first);
    assert_eq!(take_acking(&mut second, 50).await, ids(70..120));
    drop(unanswered);
    Publisher::close(&bus).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nack_delivers_that_message_and_all_after_it_again_in_order() {
    let schema = Schema::fresh(&common::machine_url());
    let Some(bus) = bus(&schema, "exclusive_nack").await else {
        return;
    };
    bus.publish("orders", messages(0, 20)).await.unwrap();
    let mut member = bus.subscribe("orders", exclusive()).await.unwrap();
    assert_eq!(take_acking(&mut member, 5).await, ids(0..5));
    // 5 and 6 are taken; 6 is acked, 5 sent back.
    let fifth = next(&mut member).await;
    let sixth = next(&mut member).await;
    sixth.ack().await.unwrap();
    fifth.nack(Duration::from_millis(50)).await.unwrap();
    let mut again = Vec::new();
    for _ in 5..20 {
        let delivery = next(&mut member).await;
        again.push((delivery.message().id().to_owned(), delivery.attempt()));
        delivery.ack().await.unwrap();
    }
    let expected: Vec<(String, u32)> = (5..20)
        .map(|n| (format!("m-{n}"), if n <= 6 { 2 } else { 1 }))
        .collect();
    assert_eq!(again, expected);
    Publisher::close(&bus).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_past_its_ack_deadline_comes_again_with_what_followed() {
    let schema = Schema::fresh(&common::machine_url());
    let Some(bus) = bus(&schema, "exclusive_deadline").await else {
        return;
    };
    bus.publish("orders", messages(0, 3)).await.unwrap();
    let options = exclusive().ack_deadline(Duration::from_millis(200));
    let mut member = bus.subscribe("orders", options).await.unwrap();
    // m-0 is held unanswered (its acker alive); m-1 and m-2 are acked.
    let (first, _, _, _unanswered) = next(&mut member).await.into_parts();
    assert_eq!(first.id(), "m-0");
    assert_eq!(take_acking(&mut member, 2).await, ids(1..3));
    // At m-0's deadline all three come again, in order.
    let mut again = Vec::new();
    for _ in 0..3 {
        let delivery = next(&mut member).await;
        again.push((delivery.message().id().to_owned(), delivery.attempt()));
        delivery.ack().await.unwrap();
    }
    assert_eq!(
        again,
        vec![
            ("m-0".to_owned(), 2),
            ("m-1".to_owned(), 2),
            ("m-2".to_owned(), 2)
        ]
    );
    Publisher::close(&bus).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_and_exclusive_members_do_not_mix_in_one_group() {
    let schema = Schema::fresh(&common::machine_url());
    let Some(bus) = bus(&schema, "exclusive_mix").await else {
        return;
    };
    // A group made exclusive refuses a shared member.
    let holder = bus.subscribe("a", exclusive()).await.unwrap();
    bus.publish("a", messages(0, 1)).await.unwrap();
    let mut holder = holder;
    let _ = next(&mut holder).await;
    let shared = bus
        .subscribe("a", SubscribeOptions::group("relay"))
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(&shared, BusError::InvalidOption { option: "exclusive", reason } if reason.contains("is exclusive")),
        "{shared}"
    );
    // A group whose shared members took messages refuses an exclusive one.
    let mut member = bus
        .subscribe("b", SubscribeOptions::group("relay").from_earliest())
        .await
        .unwrap();
    bus.publish("b", messages(0, 1)).await.unwrap();
    let _taken = next(&mut member).await;
    let mut refused = bus.subscribe("b", exclusive()).await.unwrap();
    let error = tokio::time::timeout(Duration::from_secs(30), refused.next())
        .await
        .expect("an answer")
        .expect("an item")
        .map(|_| ())
        .unwrap_err();
    assert!(error.to_string().contains("shared members took"), "{error}");
    Publisher::close(&bus).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_gets_its_whole_max_in_flight_unacked_across_reads() {
    let schema = Schema::fresh(&common::machine_url());
    let Some(bus) = bus(&schema, "exclusive_max_in_flight").await else {
        return;
    };
    for from in (0..1200).step_by(100) {
        bus.publish("orders", messages(from, 100)).await.unwrap();
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
    for _ in 0..1000 {
        held.push(next(&mut member).await);
    }
    let taken: Vec<String> = held.iter().map(|d| d.message().id().to_owned()).collect();
    assert_eq!(taken, ids(0..1000));
    let more = tokio::time::timeout(Duration::from_millis(200), member.next()).await;
    assert!(more.is_err(), "a delivery past max_in_flight");
    for delivery in held {
        delivery.ack().await.unwrap();
    }
    assert_eq!(take_acking(&mut member, 200).await, ids(1000..1200));
    Publisher::close(&bus).await.unwrap();
}
