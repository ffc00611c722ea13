//! Exclusive groups on PostgreSQL: one member holds the group and reads it
//! in order with no pending rows, and another member stands by and takes
//! over, where the first left off, when it goes; a group whose shared
//! members took messages refuses an exclusive member. What every backend
//! with exclusive groups does (nacks, deadlines, `max_in_flight`, shared
//! members refused) is the conformance suite's `exclusive_groups`.

mod common;

use std::time::Duration;

use common::{Schema, next};
use futures::StreamExt as _;
use plexus_core::Message;
use plexus_core::bus::{Publisher, SubscribeOptions, Subscriber, Subscription};
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
async fn a_group_whose_shared_members_took_messages_refuses_an_exclusive_member() {
    let schema = Schema::fresh(&common::machine_url());
    let Some(bus) = bus(&schema, "exclusive_mix").await else {
        return;
    };
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
