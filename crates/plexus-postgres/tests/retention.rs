//! Retention (`PostgresBus::prune`): messages every group of their topic
//! acknowledged go; a message a group has not acknowledged, or not yet
//! taken, stays; a topic without groups keeps its messages until they are
//! older than `max_age`.

mod common;

use std::time::Duration;

use common::Schema;
use futures::StreamExt;
use plexus_core::Message;
use plexus_core::bus::{Publisher, SubscribeOptions, Subscriber};
use plexus_postgres::PostgresBus;

const WAIT: Duration = Duration::from_secs(30);

fn messages(prefix: &str, count: usize) -> Vec<Message> {
    (0..count)
        .map(|n| {
            Message::builder("dev.plexus.test", "/retention")
                .id(format!("{prefix}-{n}"))
                .build()
                .unwrap()
        })
        .collect()
}

async fn stored(schema: &Schema, topic: &str) -> i64 {
    let mut connection = schema.connect().await;
    sqlx::query_scalar(&format!(
        "SELECT count(*) FROM \"{}\".messages WHERE topic = $1",
        schema.name
    ))
    .bind(topic)
    .fetch_one(&mut connection)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_go_the_rest_stays() {
    let schema = Schema::fresh(&common::machine_url());
    let mut config = schema.config();
    // No retention round of the bus's own meanwhile.
    config.retention_interval = Duration::from_secs(3600);
    let bus = match PostgresBus::with_config(config).await {
        Ok(bus) => bus,
        Err(e) => return common::skip_or_fail("acknowledged_messages_go", &e.to_string()),
    };
    let mut fast = bus
        .subscribe("orders", SubscribeOptions::group("fast"))
        .await
        .unwrap();
    let _slow = bus
        .subscribe("orders", SubscribeOptions::group("slow"))
        .await
        .unwrap();
    bus.publish("orders", messages("order", 10)).await.unwrap();
    bus.publish("unread", messages("unread", 5)).await.unwrap();
    let mut held = Vec::new();
    for n in 0..10 {
        let delivery = tokio::time::timeout(WAIT, fast.next())
            .await
            .expect("a delivery")
            .unwrap()
            .unwrap();
        // The group acknowledges all but the last two.
        if n < 8 {
            delivery.ack().await.unwrap();
        } else {
            held.push(delivery);
        }
    }
    // The slow group took nothing yet: everything stays.
    bus.prune().await.unwrap();
    assert_eq!(stored(&schema, "orders").await, 10);
    assert_eq!(stored(&schema, "unread").await, 5);

    // Once the slow group is done with them, the messages both groups
    // acknowledged go; the two the fast group holds stay.
    drop(_slow);
    let mut slow = bus
        .subscribe("orders", SubscribeOptions::group("slow"))
        .await
        .unwrap();
    for _ in 0..10 {
        let delivery = tokio::time::timeout(WAIT, slow.next())
            .await
            .expect("a delivery to the slow group")
            .unwrap()
            .unwrap();
        delivery.ack().await.unwrap();
    }
    assert_eq!(bus.prune().await.unwrap(), 8);
    assert_eq!(stored(&schema, "orders").await, 2);
    assert_eq!(
        stored(&schema, "unread").await,
        5,
        "a topic without groups keeps its messages"
    );
    for delivery in held {
        delivery.ack().await.unwrap();
    }
    assert_eq!(bus.prune().await.unwrap(), 2);
    assert_eq!(stored(&schema, "orders").await, 0);
    drop((fast, slow));
    Publisher::close(&bus).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_older_than_max_age_go() {
    let schema = Schema::fresh(&common::machine_url());
    let mut config = schema.config();
    config.max_age = Duration::from_secs(3600);
    config.retention_interval = Duration::from_secs(3600);
    let bus = match PostgresBus::with_config(config).await {
        Ok(bus) => bus,
        Err(e) => return common::skip_or_fail("messages_older_than_max_age_go", &e.to_string()),
    };
    bus.publish("unread", messages("old", 3)).await.unwrap();
    bus.publish("unread", messages("new", 2)).await.unwrap();
    let mut connection = schema.connect().await;
    sqlx::query(&format!(
        "UPDATE \"{}\".messages SET published_at = now() - interval '2 hours' WHERE id LIKE 'old-%'",
        schema.name
    ))
    .execute(&mut connection)
    .await
    .unwrap();
    assert_eq!(bus.prune().await.unwrap(), 3);
    assert_eq!(stored(&schema, "unread").await, 2);
    // They were the only ones: a group from the earliest gets the rest.
    let mut replay = bus
        .subscribe("unread", SubscribeOptions::group("late").from_earliest())
        .await
        .unwrap();
    for expected in ["new-0", "new-1"] {
        let delivery = tokio::time::timeout(WAIT, replay.next())
            .await
            .expect("a delivery")
            .unwrap()
            .unwrap();
        assert_eq!(delivery.message().id(), expected);
        delivery.ack().await.unwrap();
    }
    drop(replay);
    Publisher::close(&bus).await.unwrap();
}
