//! Messages without a key a claim takes together are one `pending` row
//! per run of consecutive seqs: answering part of a run, refusing one
//! message of it and its lease running out must each answer exactly the
//! messages they name, the rest of the run staying pending.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Schema, next};
use plexus_core::Message;
use plexus_core::bus::{Publisher, SubscribeOptions, Subscriber};
use plexus_postgres::PostgresBus;

const ROWS: &str = "SELECT count(*) FROM {s}.pending";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_of_a_run_are_answered_alone_and_the_rest_comes_again() {
    let schema = Schema::fresh(&common::machine_url());
    let bus = match PostgresBus::with_config(schema.config()).await {
        Ok(bus) => bus,
        Err(e) => return common::skip_or_fail("parts_of_a_run", &e.to_string()),
    };
    let batch: Vec<Message> = (0..100)
        .map(|n| {
            Message::builder("dev.plexus.test", "/runs")
                .id(format!("m-{n:03}"))
                .build()
                .unwrap()
        })
        .collect();
    let short = SubscribeOptions::group("g")
        .max_in_flight(100)
        .ack_deadline(Duration::from_secs(1));
    let mut first = bus.subscribe("orders", short).await.unwrap();
    bus.publish("orders", batch).await.unwrap();
    let mut held = Vec::new();
    while held.len() < 100 {
        held.push(next(&mut first).await);
    }
    let mut connection = schema.connect().await;
    assert_eq!(schema.count(&mut connection, ROWS).await, 1, "one run");

    // Acks of two stretches and a nack in the middle of what is left.
    let mut acked = BTreeSet::new();
    let mut kept = Vec::new();
    for (n, delivery) in held.into_iter().enumerate() {
        match n {
            10..=19 | 60..=69 => {
                acked.insert(delivery.message().id().to_owned());
                delivery.ack().await.unwrap();
            }
            50 => delivery.nack(Duration::ZERO).await.unwrap(),
            _ => kept.push(delivery),
        }
    }
    // [0, 9], [20, 49], [50], [51, 59], [70, 99].
    assert_eq!(schema.count(&mut connection, ROWS).await, 5);

    // A member with less room than the run takes the nacked message at
    // once and, once the first member's lease ran out, the rest in parts.
    let mut second = bus
        .subscribe("orders", SubscribeOptions::group("g").max_in_flight(7))
        .await
        .unwrap();
    let mut again = BTreeSet::new();
    while again.len() < 80 {
        let delivery = next(&mut second).await;
        assert_eq!(delivery.attempt(), 2, "{}", delivery.message().id());
        let id = delivery.message().id().to_owned();
        assert!(!acked.contains(&id), "{id} was acknowledged");
        assert!(again.insert(id.clone()), "{id} came twice");
        delivery.ack().await.unwrap();
    }
    // The first member's answers come too late: their lease went on.
    for delivery in kept {
        delivery.ack().await.unwrap();
    }
    assert_eq!(schema.count(&mut connection, ROWS).await, 0);
    drop((first, second));
    Publisher::close(&bus).await.unwrap();
}
