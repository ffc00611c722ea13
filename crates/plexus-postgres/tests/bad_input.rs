//! Bad input at the bus's entry points beyond the conformance suite's
//! `bad_input`: configurations, group names, batches over the byte bound,
//! times PostgreSQL cannot store, and rows written by other clients that
//! are not valid messages. Each gets an error naming the problem, and
//! nothing already accepted is lost.

mod common;

use std::time::{Duration, UNIX_EPOCH};

use common::Schema;
use futures::StreamExt;
use plexus_core::Message;
use plexus_core::bus::{BusError, Publisher, SubscribeOptions, Subscriber};
use plexus_postgres::{PostgresBus, PostgresConfig};

const WAIT: Duration = Duration::from_secs(30);

fn message(id: &str) -> Message {
    Message::builder("dev.plexus.test", "/bad_input")
        .id(id)
        .payload("text/plain", id.to_owned())
        .build()
        .unwrap()
}

async fn open(schema: &Schema, test: &str) -> Option<PostgresBus> {
    match PostgresBus::with_config(schema.config()).await {
        Ok(bus) => Some(bus),
        Err(e) => {
            common::skip_or_fail(test, &e.to_string());
            None
        }
    }
}

#[tokio::test]
async fn configurations_and_urls_are_refused_by_name() {
    for (url, expected) in [
        ("mysql://h/db", "scheme"),
        ("postgres://h/db?schema=drop;table", "schema"),
    ] {
        let error = PostgresBus::connect(url).await.unwrap_err();
        assert!(
            matches!(
                error,
                BusError::InvalidOption {
                    option: "url" | "schema",
                    ..
                }
            ),
            "{error}"
        );
        assert!(error.to_string().contains(expected), "{url}: {error}");
    }
    let mut config = PostgresConfig::new(common::machine_url());
    config.max_connections = 0;
    let error = PostgresBus::with_config(config).await.unwrap_err();
    assert!(error.to_string().contains("max_connections"), "{error}");
    // Nothing listens on port 1: the error names the server and what to check.
    let error = PostgresBus::connect("postgres://postgres@127.0.0.1:1/test")
        .await
        .unwrap_err();
    assert!(matches!(error, BusError::Backend { .. }), "{error}");
    assert!(error.to_string().contains("127.0.0.1:1/test"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_groups_batches_and_times_are_refused_and_nothing_accepted_is_lost() {
    let schema = Schema::fresh(&common::machine_url());
    let mut config = schema.config();
    config.max_batch_bytes = 4096;
    let Some(bus) = (match PostgresBus::with_config(config).await {
        Ok(bus) => Some(bus),
        Err(e) => {
            common::skip_or_fail("bad_groups_batches_and_times", &e.to_string());
            None
        }
    }) else {
        return;
    };
    let mut subscription = bus
        .subscribe("orders", SubscribeOptions::group("audit"))
        .await
        .unwrap();
    bus.publish("orders", vec![message("before")])
        .await
        .unwrap();

    let error = bus
        .subscribe("orders", SubscribeOptions::group("bad\u{1}group"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            BusError::InvalidOption {
                option: "group",
                ..
            }
        ),
        "{error}"
    );

    let big: Vec<Message> = (0..10)
        .map(|n| {
            Message::builder("dev.plexus.test", "/bad_input")
                .id(format!("big-{n}"))
                .payload("application/octet-stream", vec![0u8; 1000])
                .build()
                .unwrap()
        })
        .collect();
    let error = bus.publish("orders", big).await.unwrap_err();
    assert!(matches!(error, BusError::Full { .. }), "{error}");
    assert!(error.to_string().contains("max_batch_bytes"), "{error}");

    let ancient = Message::builder("dev.plexus.test", "/bad_input")
        .id("ancient")
        .time(UNIX_EPOCH - Duration::from_secs(400_000_000_000))
        .build()
        .unwrap();
    let error = bus
        .publish("orders", vec![message("with-ancient"), ancient])
        .await
        .unwrap_err();
    assert!(
        matches!(error, BusError::InvalidOption { option: "time", .. }),
        "{error}"
    );
    assert!(error.to_string().contains("ancient"), "{error}");

    bus.publish("orders", vec![message("after")]).await.unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        let delivery = tokio::time::timeout(WAIT, subscription.next())
            .await
            .expect("the accepted messages arrive")
            .unwrap()
            .unwrap();
        got.push(delivery.message().id().to_owned());
        delivery.ack().await.unwrap();
    }
    assert_eq!(got, ["before", "after"]);
    drop(subscription);
    Publisher::close(&bus).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_row_that_is_no_message_is_parked_and_the_group_goes_on() {
    let schema = Schema::fresh(&common::machine_url());
    let Some(bus) = open(&schema, "a_foreign_row_that_is_no_message").await else {
        return;
    };
    let mut subscription = bus
        .subscribe("orders", SubscribeOptions::group("audit"))
        .await
        .unwrap();
    let mut connection = schema.connect().await;
    let name = &schema.name;
    // An empty id, a headers array, a specversion plexus does not read.
    for (id, headers, specversion) in [
        ("", "{}", "1.0"),
        ("array-headers", "[1, 2]", "1.0"),
        ("future", "{}", "2.0"),
    ] {
        sqlx::query(&format!(
            "INSERT INTO \"{name}\".messages (topic, id, source, type, specversion, headers) \
             VALUES ('orders', $1, '/foreign', 'dev.plexus.test', $2, $3::jsonb)"
        ))
        .bind(id)
        .bind(specversion)
        .bind(headers)
        .execute(&mut connection)
        .await
        .unwrap();
    }
    bus.publish("orders", vec![message("valid")]).await.unwrap();
    let delivery = tokio::time::timeout(WAIT, subscription.next())
        .await
        .expect("the valid message arrives past the invalid rows")
        .unwrap()
        .unwrap();
    assert_eq!(delivery.message().id(), "valid");
    delivery.ack().await.unwrap();
    // The invalid rows wait, parked, for someone to repair them.
    let parked: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM \"{name}\".pending WHERE due = 'infinity'"
    ))
    .fetch_one(&mut connection)
    .await
    .unwrap();
    assert_eq!(parked, 3);
    drop(subscription);
    Publisher::close(&bus).await.unwrap();
}
