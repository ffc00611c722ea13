//! Bad input the conformance suite does not cover, on the machine's broker
//! (`PLEXUS_TEST_RABBITMQ`, default `amqp://guest:guest@127.0.0.1:5672/%2f`;
//! skips with one line when it is unreachable, fails then with `CI=true`):
//!
//! - messages another AMQP client wrote that are not readable CloudEvents
//!   are never delivered: they land in the dead-letter queue with
//!   RabbitMQ's `x-death` record, and the messages around them flow;
//!   a plain AMQP message (no `cloudEvents:` headers) is delivered with
//!   fallback attributes;
//! - what plexus refuses before sending anything: wildcard topics,
//!   reserved header names, a prefetch over AMQP's limit.

use std::time::Duration;

use futures::StreamExt;
use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeDeleteOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use plexus_core::Message;
use plexus_core::bus::{BusError, Publisher, SubscribeOptions, Subscriber};
use plexus_rabbitmq::{RabbitBus, RabbitConfig};
use tokio::time::{Instant, timeout};

/// The longest any wait here lasts.
const PATIENCE: Duration = Duration::from_secs(30);

/// A bus with an exchange, queues and dead letters of its own, or `None`
/// (after one line saying why) when the machine's broker is unreachable.
async fn own_bus(name: &str) -> Option<(RabbitBus, RabbitConfig)> {
    let url = std::env::var("PLEXUS_TEST_RABBITMQ")
        .unwrap_or_else(|_| plexus_rabbitmq::DEFAULT_URL.to_owned());
    let mut config = RabbitConfig::from_url(&url).expect("a valid PLEXUS_TEST_RABBITMQ");
    config.name_after(&format!("plexus_{name}_{:08x}", std::process::id()));
    match RabbitBus::with_config(config.clone()).await {
        Ok(bus) => Some((bus, config)),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("RabbitMQ is unreachable and CI=true: {e}")
        }
        Err(e) => {
            println!(
                "skipped: RabbitMQ at {} is unreachable ({e}); start it with \
                 `rabbitmq-server -detached` or point PLEXUS_TEST_RABBITMQ at one",
                config.broker()
            );
            None
        }
    }
}

/// A raw AMQP connection to the same broker.
async fn raw(config: &RabbitConfig) -> Connection {
    Connection::connect_uri(config.uri.clone(), ConnectionProperties::default())
        .await
        .expect("a raw connection")
}

fn headers(pairs: &[(&str, &str)]) -> FieldTable {
    let mut table = FieldTable::default();
    for (name, value) in pairs {
        table.insert(
            (*name).into(),
            AMQPValue::LongString(LongString::from(*value)),
        );
    }
    table
}

/// Deletes the queues and exchanges `config` names.
async fn clean_up(connection: &Connection, config: &RabbitConfig, queues: &[String]) {
    let channel = connection.create_channel().await.expect("a channel");
    let dead = config
        .dead_letters
        .clone()
        .expect("dead letters configured");
    for queue in queues.iter().chain([&dead.queue]) {
        let _ = channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    for exchange in [&config.exchange, &dead.exchange] {
        let _ = channel
            .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_messages_are_dead_lettered_and_the_rest_flow() {
    let Some((bus, config)) = own_bus("unreadable").await else {
        return;
    };
    let topic = "orders";
    let mut subscription = bus
        .subscribe(topic, SubscribeOptions::group("readers"))
        .await
        .expect("subscribing");
    let connection = raw(&config).await;
    let channel = connection.create_channel().await.expect("a channel");
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    let raw_publish = |properties: BasicProperties, body: &'static [u8]| {
        let channel = channel.clone();
        let exchange = config.exchange.clone();
        async move {
            channel
                .basic_publish(
                    exchange.as_str().into(),
                    topic.into(),
                    BasicPublishOptions::default(),
                    body,
                    properties,
                )
                .await
                .expect("publishing")
                .await
                .expect("the broker's confirm")
        }
    };
    let good = |n: usize| {
        Message::builder("shop.order.placed", "/shop")
            .id(format!("good-{n}"))
            .build()
            .expect("a message")
    };
    bus.publish(topic, vec![good(0)]).await.expect("publishing");
    // No source or type; a time that is not RFC 3339.
    let no_source = headers(&[("cloudEvents:id", "bad-1"), ("cloudEvents:type", "t")]);
    raw_publish(BasicProperties::default().with_headers(no_source), b"x").await;
    let bad_time = headers(&[
        ("cloudEvents:id", "bad-2"),
        ("cloudEvents:source", "/s"),
        ("cloudEvents:type", "t"),
        ("cloudEvents:time", "yesterday"),
    ]);
    raw_publish(BasicProperties::default().with_headers(bad_time), b"x").await;
    // A plain AMQP message: delivered with fallback attributes.
    let plain = BasicProperties::default()
        .with_message_id("plain-1".into())
        .with_content_type("text/plain".into());
    raw_publish(plain, b"hello").await;
    bus.publish(topic, vec![good(1)]).await.expect("publishing");

    let mut got = Vec::new();
    while got.len() < 3 {
        let next = timeout(PATIENCE, subscription.next()).await;
        let delivery = match next {
            Ok(Some(Ok(delivery))) => delivery,
            other => panic!(
                "waiting for good-0, plain-1 and good-1 (got {got:?}): {:?}",
                other.map(|o| o.map(|r| r.map(|d| d.message().id().to_owned())))
            ),
        };
        let message = delivery.message().clone();
        delivery.ack().await.expect("acknowledging");
        got.push(message.id().to_owned());
        if message.id() == "plain-1" {
            assert_eq!(message.ty(), "org.amqp.message");
            assert_eq!(
                message.source(),
                format!("/amqp/{}/{topic}", config.exchange)
            );
            assert_eq!(message.data_content_type(), Some("text/plain"));
            assert_eq!(&message.payload()[..], b"hello");
        }
    }
    assert_eq!(
        got,
        ["good-0", "plain-1", "good-1"],
        "in publish order, no bad one"
    );

    // Both unreadable messages are in the dead-letter queue, with the
    // group's queue and `rejected` in their x-death record.
    let dead = config
        .dead_letters
        .clone()
        .expect("dead letters configured");
    let group_queue = format!("{}.{topic}.readers", config.queue_prefix);
    let mut dead_ids = Vec::new();
    let give_up = Instant::now() + PATIENCE;
    while dead_ids.len() < 2 {
        assert!(
            Instant::now() < give_up,
            "only {dead_ids:?} reached dead-letter queue `{}` within {PATIENCE:?}",
            dead.queue
        );
        let got = channel
            .basic_get(dead.queue.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .expect("reading the dead-letter queue");
        let Some(letter) = got else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let table = letter
            .delivery
            .properties
            .headers()
            .clone()
            .unwrap_or_default();
        let id = match table.inner().get("cloudEvents:id") {
            Some(AMQPValue::LongString(id)) => id.to_string(),
            other => panic!("a dead letter without its id: {other:?}"),
        };
        let death = match table.inner().get("x-death") {
            Some(AMQPValue::FieldArray(deaths)) => match deaths.as_slice().first() {
                Some(AMQPValue::FieldTable(death)) => death.clone(),
                other => panic!("dead letter {id}: an empty x-death record: {other:?}"),
            },
            other => panic!("dead letter {id}: no x-death record: {other:?}"),
        };
        let field = |name: &str| match death.inner().get(name) {
            Some(AMQPValue::LongString(value)) => value.to_string(),
            other => panic!("dead letter {id}: x-death has no {name}: {other:?}"),
        };
        assert_eq!(
            (field("reason"), field("queue")),
            ("rejected".to_owned(), group_queue.clone()),
            "dead letter {id}: its x-death record"
        );
        dead_ids.push(id);
    }
    dead_ids.sort();
    assert_eq!(dead_ids, ["bad-1", "bad-2"]);
    drop(subscription);
    Subscriber::close(&bus).await.expect("closing");
    clean_up(&connection, &config, &[group_queue]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_before_anything_is_sent() {
    let Some((bus, config)) = own_bus("refused").await else {
        return;
    };
    let message = |header: Option<&str>| {
        let builder = Message::builder("t", "/s");
        match header {
            Some(name) => builder.header(name, "v"),
            None => builder,
        }
        .build()
        .expect("a message")
    };
    for topic in ["orders.*", "orders.#", "#"] {
        let published = bus.publish(topic, vec![message(None)]).await;
        assert!(
            matches!(published, Err(BusError::InvalidTopic { .. })),
            "publishing to {topic}: {published:?}"
        );
        let subscribed = bus.subscribe(topic, SubscribeOptions::default()).await;
        assert!(
            matches!(subscribed, Err(BusError::InvalidTopic { .. })),
            "subscribing to {topic}: {:?}",
            subscribed.map(|_| ())
        );
    }
    // A batch with a header RabbitMQ keeps for itself is refused whole.
    let mut subscription = bus
        .subscribe("orders", SubscribeOptions::default())
        .await
        .expect("subscribing");
    let refused = bus
        .publish("orders", vec![message(None), message(Some("x-death"))])
        .await;
    match refused {
        Err(BusError::InvalidOption { reason, .. }) => {
            assert!(reason.contains("x-death"), "{reason}")
        }
        other => panic!("a reserved header name: expected InvalidOption, got {other:?}"),
    }
    let prefetch = bus
        .subscribe("orders", SubscribeOptions::default().max_in_flight(70_000))
        .await;
    match prefetch {
        Err(BusError::InvalidOption { option, .. }) => assert_eq!(option, "max_in_flight"),
        other => panic!(
            "max_in_flight 70,000: expected InvalidOption, got {:?}",
            other.map(|_| ())
        ),
    }
    // Nothing of the refused batch arrived: the next delivery is the
    // message published after it.
    let after = message(None);
    bus.publish("orders", vec![after.clone()])
        .await
        .expect("publishing");
    let next = timeout(PATIENCE, subscription.next()).await;
    match next {
        Ok(Some(Ok(delivery))) => {
            assert_eq!(
                delivery.message().id(),
                after.id(),
                "a refused message arrived"
            );
            delivery.ack().await.expect("acknowledging");
        }
        other => panic!(
            "waiting for the message after the refused batch: {:?}",
            other.map(|o| o.map(|r| r.map(|_| ())))
        ),
    }
    drop(subscription);
    Publisher::close(&bus).await.expect("closing");
    let connection = raw(&config).await;
    clean_up(&connection, &config, &[]).await;
}
