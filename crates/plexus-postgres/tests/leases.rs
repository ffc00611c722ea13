//! How a group hands out messages beyond the conformance suite: the
//! group window bounds the messages with a key a group takes ahead of its
//! acks; closing a
//! bus hands its leases to other members at once; a private group goes
//! when its subscription is dropped.

mod common;

use std::time::Duration;

use common::{Schema, next};
use plexus_core::Message;
use plexus_core::bus::{Publisher, SubscribeOptions, Subscriber};
use plexus_postgres::PostgresBus;
use tokio::time::Instant;

const WAIT: Duration = Duration::from_secs(30);

fn messages(count: usize) -> Vec<Message> {
    (0..count)
        .map(|n| {
            Message::builder("dev.plexus.test", "/leases")
                .id(format!("m-{n}"))
                .key(format!("k-{n}"))
                .build()
                .unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_takes_no_more_keyed_messages_than_its_window_ahead_of_its_acks() {
    let schema = Schema::fresh(&common::machine_url());
    let mut config = schema.config();
    config.group_window = 10;
    let bus = match PostgresBus::with_config(config).await {
        Ok(bus) => bus,
        Err(e) => return common::skip_or_fail("a_group_takes_no_more", &e.to_string()),
    };
    let mut member = bus
        .subscribe("orders", SubscribeOptions::group("g").max_in_flight(100))
        .await
        .unwrap();
    bus.publish("orders", messages(50)).await.unwrap();
    let mut held = Vec::new();
    for _ in 0..10 {
        held.push(next(&mut member).await);
    }
    let pending = "SELECT count(*) FROM {s}.pending";
    let mut connection = schema.connect().await;
    assert_eq!(schema.count(&mut connection, pending).await, 10);
    // Acknowledging makes room: the rest arrive, never more than 10 out.
    let mut received = held.len();
    while let Some(delivery) = held.pop() {
        delivery.ack().await.unwrap();
        if received < 50 {
            held.push(next(&mut member).await);
            received += 1;
            assert!(schema.count(&mut connection, pending).await <= 10);
        }
    }
    assert_eq!(received, 50);
    drop(member);
    Publisher::close(&bus).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_bus_hands_its_leases_to_other_members_at_once() {
    let schema = Schema::fresh(&common::machine_url());
    let (Ok(first), Ok(second)) = (
        PostgresBus::with_config(schema.config()).await,
        PostgresBus::with_config(schema.config()).await,
    ) else {
        return common::skip_or_fail("closing_a_bus_hands_its_leases", "connecting failed");
    };
    // A deadline far past the test's wait: only the close can free them.
    let options = SubscribeOptions::group("g").ack_deadline(Duration::from_secs(600));
    let mut leaving = first.subscribe("orders", options.clone()).await.unwrap();
    first.publish("orders", messages(5)).await.unwrap();
    let mut held = Vec::new();
    while held.len() < 5 {
        held.push(next(&mut leaving).await);
    }
    let mut staying = second.subscribe("orders", options).await.unwrap();
    Subscriber::close(&first).await.unwrap();
    for _ in 0..5 {
        let delivery = next(&mut staying).await;
        assert_eq!(delivery.attempt(), 2);
        delivery.ack().await.unwrap();
    }
    // Answers after the close are refused: the messages went to another.
    for delivery in held {
        assert!(delivery.ack().await.is_err());
    }
    drop((leaving, staying));
    Publisher::close(&second).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_group_goes_with_its_subscription() {
    let schema = Schema::fresh(&common::machine_url());
    let bus = match PostgresBus::with_config(schema.config()).await {
        Ok(bus) => bus,
        Err(e) => return common::skip_or_fail("a_private_group_goes", &e.to_string()),
    };
    let mut private = bus
        .subscribe("orders", SubscribeOptions::default())
        .await
        .unwrap();
    bus.publish("orders", messages(3)).await.unwrap();
    let held = next(&mut private).await;
    let groups = "SELECT count(*) FROM {s}.groups";
    let rows = "SELECT (SELECT count(*) FROM {s}.groups) + (SELECT count(*) FROM {s}.pending)";
    let mut connection = schema.connect().await;
    assert_eq!(schema.count(&mut connection, groups).await, 1);
    drop(private);
    drop(held);
    let gone = Instant::now() + WAIT;
    while schema.count(&mut connection, rows).await > 0 {
        assert!(
            Instant::now() < gone,
            "the private group outlived its subscription"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Publisher::close(&bus).await.unwrap();
}
