//! The PostgreSQL outbox: messages written in the caller's transaction
//! exist exactly when it commits, reach a relay in their key's order
//! however the transactions' commits interleave (the visibility gap of
//! TESTING.md, Watermill's `TestNotMissingMessages`), and wake it at
//! commit.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::Schema;
use futures::StreamExt as _;
use plexus_bus::forward::Forwarder;
use plexus_bus::memory::MemoryBus;
use plexus_core::Message;
use plexus_core::bus::{BusError, Publisher, SubscribeOptions, Subscriber};
use plexus_postgres::{PostgresBus, PostgresOutbox};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::oneshot;

const TOPIC: &str = "outbox.orders";
const KEY: &str = "order-7";
const WAIT: Duration = Duration::from_secs(30);

fn event(id: &str) -> Message {
    Message::builder("shop.OrderChanged", "/orders")
        .id(id)
        .key(KEY)
        .payload("text/plain", Bytes::copy_from_slice(id.as_bytes()))
        .build()
        .unwrap()
}

/// The service's own pool and its table of orders, in the test's schema.
async fn service(schema: &Schema) -> PgPool {
    let pool = PgPoolOptions::new()
        .max_connections(6)
        .connect(&schema.url)
        .await
        .unwrap();
    sqlx::query(&format!(
        "CREATE TABLE \"{}\".orders (id text PRIMARY KEY)",
        schema.name
    ))
    .execute(&pool)
    .await
    .unwrap();
    pool
}

/// Runs a forwarder from `TOPIC` on `source` to `TOPIC` on a memory bus;
/// returns the destination's subscription and what stops the forwarder.
async fn relay(
    source: &PostgresBus,
) -> (
    plexus_core::bus::Subscription,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<plexus_bus::forward::Forwarded, BusError>>,
) {
    let destination = MemoryBus::new();
    let out = destination
        .subscribe(TOPIC, SubscribeOptions::group("audit"))
        .await
        .unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let forwarder = Forwarder::new(
        Arc::new(source.clone()),
        TOPIC,
        "relay",
        Arc::new(destination),
        TOPIC,
    );
    let task = tokio::spawn(forwarder.run(async move {
        let _ = stopped.await;
    }));
    (out, stop, task)
}

async fn received(out: &mut plexus_core::bus::Subscription, until: &str) -> Vec<String> {
    let mut got = Vec::new();
    while got.last().map(String::as_str) != Some(until) {
        let delivery = tokio::time::timeout(WAIT, out.next())
            .await
            .unwrap_or_else(|_| panic!("only {got:?} relayed within {WAIT:?}"))
            .expect("the subscription goes on")
            .expect("a delivery");
        got.push(delivery.message().id().to_owned());
        delivery.ack().await.unwrap();
    }
    got
}

/// tx0, tx1, a rolled-back one and tx2 each write an order and its event
/// through the outbox, then end in reverse: tx2 commits first, tx0 last.
/// The relay, already waiting, gets the three committed events in the
/// order they were written (their key's order), never the rolled-back
/// one, and nothing before tx0 commits. The poll interval is longer than
/// the test waits: only the notifications sent at commit wake it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reversed_commits_reach_the_relay_in_order_and_a_rollback_never() {
    let url = common::machine_url();
    let schema = Schema::fresh(&url);
    let mut config = schema.config();
    config.poll_interval = Duration::from_secs(600);
    let bus = match PostgresBus::with_config(config).await {
        Ok(bus) => bus,
        Err(e) => return common::skip_or_fail("reversed_commits_reach_the_relay", &e.to_string()),
    };
    let pool = service(&schema).await;
    let outbox = PostgresOutbox::for_bus(&bus);
    let (mut out, stop, task) = relay(&bus).await;

    let insert_order = format!("INSERT INTO \"{}\".orders (id) VALUES ($1)", schema.name);
    let mut open = Vec::new();
    for id in ["m0", "m1", "rolled-back", "m2"] {
        let mut tx = pool.begin().await.unwrap();
        sqlx::query(&insert_order)
            .bind(id)
            .execute(&mut *tx)
            .await
            .unwrap();
        outbox.publish(&mut tx, TOPIC, &[event(id)]).await.unwrap();
        open.push((id, tx));
    }
    while let Some((id, tx)) = open.pop() {
        if id == "rolled-back" {
            tx.rollback().await.unwrap();
        } else {
            tx.commit().await.unwrap();
        }
        if !open.is_empty() {
            // Nothing may pass while tx0 is open: not tx2's message
            // (tx0's and tx1's would then come after it, or never).
            let early = tokio::time::timeout(Duration::from_millis(200), out.next()).await;
            assert!(
                early.is_err(),
                "relayed {:?} while tx0 was still open",
                early
                    .ok()
                    .flatten()
                    .map(|d| d.map(|d| d.message().id().to_owned()))
            );
        }
    }
    let mut tx = pool.begin().await.unwrap();
    outbox
        .publish(&mut tx, TOPIC, &[event("after")])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        received(&mut out, "after").await,
        ["m0", "m1", "m2", "after"]
    );

    stop.send(()).unwrap();
    assert_eq!(task.await.unwrap().unwrap().messages, 4);
    pool.close().await;
    Publisher::close(&bus).await.unwrap();
}

/// The relay's session with PostgreSQL is cut while it waits (its backend
/// terminated, as a server restart or a lost connection would): its next
/// read fails, the forwarder subscribes again by itself, takes the group
/// again and relays what is committed after; nothing is lost, and the
/// forwarder counts the failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_whose_session_is_cut_subscribes_again_and_loses_nothing() {
    let url = common::machine_url();
    let schema = Schema::fresh(&url);
    let bus = match PostgresBus::with_config(schema.config()).await {
        Ok(bus) => bus,
        Err(e) => return common::skip_or_fail("a_relay_whose_session_is_cut", &e.to_string()),
    };
    let pool = service(&schema).await;
    let outbox = PostgresOutbox::for_bus(&bus);
    let (mut out, stop, task) = relay(&bus).await;
    let commit = |id: &'static str| {
        let (pool, outbox) = (&pool, &outbox);
        async move {
            let mut tx = pool.begin().await.unwrap();
            outbox.publish(&mut tx, TOPIC, &[event(id)]).await.unwrap();
            tx.commit().await.unwrap();
        }
    };
    commit("before").await;
    assert_eq!(received(&mut out, "before").await, ["before"]);

    // The relay's session: the one holding its group's advisory lock.
    let cut: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_locks \
         WHERE locktype = 'advisory' AND granted AND classid = hashtext($1)::oid \
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .bind(format!("\"{}\".exclusive", schema.name))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(cut, 1, "one session holds the relay's group");

    commit("after").await;
    let got = received(&mut out, "after").await;
    // "before" may come again: its ack may not have reached the cursor
    // before the cut. A duplicate, which an inbox drops; never a loss.
    assert!(
        got.iter().rev().skip(1).all(|id| id == "before"),
        "relayed after the cut: {got:?}"
    );
    stop.send(()).unwrap();
    let done = task
        .await
        .unwrap()
        .expect("the forwarder goes on after the cut");
    assert!(
        done.source_failures >= 1,
        "the cut was not counted: {done:?}"
    );
    pool.close().await;
    Publisher::close(&bus).await.unwrap();
}

/// A refusal decided before anything is sent (a message too large, a bad
/// topic) leaves the transaction usable: its own write commits, without
/// the refused messages, and an empty publish is nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_publish_leaves_the_transaction_usable() {
    let url = common::machine_url();
    let schema = Schema::fresh(&url);
    let mut config = schema.config();
    config.max_message_bytes = 1024;
    let bus = match PostgresBus::with_config(config.clone()).await {
        Ok(bus) => bus,
        Err(e) => return common::skip_or_fail("a_refused_publish_leaves", &e.to_string()),
    };
    let pool = service(&schema).await;
    let outbox = PostgresOutbox::new(&config).unwrap();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query(&format!(
        "INSERT INTO \"{}\".orders (id) VALUES ('kept')",
        schema.name
    ))
    .execute(&mut *tx)
    .await
    .unwrap();
    let large = Message::builder("shop.OrderChanged", "/orders")
        .id("large")
        .payload("application/octet-stream", Bytes::from(vec![0u8; 4096]))
        .build()
        .unwrap();
    let refused = outbox
        .publish(&mut tx, TOPIC, &[event("small"), large])
        .await
        .unwrap_err();
    assert!(
        matches!(refused, BusError::TooLarge { ref id, .. } if id == "large"),
        "{refused}"
    );
    let bad_topic = outbox
        .publish(&mut tx, "", &[event("x")])
        .await
        .unwrap_err();
    assert!(bad_topic.to_string().contains("topic"), "{bad_topic}");
    outbox.publish(&mut tx, TOPIC, &[]).await.unwrap();
    tx.commit().await.unwrap();

    let mut control = schema.connect().await;
    assert_eq!(
        schema
            .count(&mut control, "SELECT count(*) FROM {s}.orders")
            .await,
        1
    );
    assert_eq!(
        schema
            .count(&mut control, "SELECT count(*) FROM {s}.messages")
            .await,
        0,
        "no message of a refused publish is kept"
    );
    pool.close().await;
    Publisher::close(&bus).await.unwrap();
}

/// Every attribute written through the outbox comes out of the bus as it
/// went in (the outbox and the bus's publish share one statement).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_attribute_survives_the_outbox() {
    let url = common::machine_url();
    let schema = Schema::fresh(&url);
    let bus = match PostgresBus::with_config(schema.config()).await {
        Ok(bus) => bus,
        Err(e) => return common::skip_or_fail("every_attribute_survives", &e.to_string()),
    };
    let mut members = bus
        .subscribe(TOPIC, SubscribeOptions::group("audit").from_earliest())
        .await
        .unwrap();
    let pool = service(&schema).await;
    let outbox = PostgresOutbox::for_bus(&bus);
    let sent = Message::builder("shop.OrderPlaced", "/orders/eu")
        .id("order-42")
        .subject("orders/42")
        .key("customer-9")
        .time(std::time::UNIX_EPOCH + Duration::from_micros(1_790_000_000_123_456))
        .header(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )
        .payload("application/json", Bytes::from_static(br#"{"total":12}"#))
        .build()
        .unwrap();
    let mut tx = pool.begin().await.unwrap();
    outbox
        .publish(&mut tx, TOPIC, std::slice::from_ref(&sent))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let delivery = common::next(&mut members).await;
    let got = delivery.message();
    assert_eq!(got.id(), sent.id());
    assert_eq!(got.source(), sent.source());
    assert_eq!(got.ty(), sent.ty());
    assert_eq!(got.subject(), sent.subject());
    assert_eq!(got.key(), sent.key());
    assert_eq!(got.time(), sent.time());
    assert_eq!(got.data_content_type(), sent.data_content_type());
    assert_eq!(got.headers(), sent.headers());
    assert_eq!(got.payload(), sent.payload());
    delivery.ack().await.unwrap();
    drop(members);
    pool.close().await;
    Publisher::close(&bus).await.unwrap();
}

/// Three relays in one group share the outbox topic: every committed
/// message reaches the destination once, each key's messages in the order
/// their transactions committed (a key is with one relay at a time), and
/// once relayed the rows are pruned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_of_one_group_share_the_topic_keeping_each_key_in_order() {
    const KEYS: usize = 8;
    const PER_KEY: usize = 40;
    let url = common::machine_url();
    let schema = Schema::fresh(&url);
    let mut config = schema.config();
    config.max_connections = 6;
    let bus = match PostgresBus::with_config(config).await {
        Ok(bus) => bus,
        Err(e) => return common::skip_or_fail("relays_of_one_group_share", &e.to_string()),
    };
    let pool = service(&schema).await;
    let outbox = PostgresOutbox::for_bus(&bus);
    let destination = MemoryBus::new();
    let mut out = destination
        .subscribe(TOPIC, SubscribeOptions::group("audit"))
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut relays = Vec::new();
    for _ in 0..3 {
        let forwarder = Forwarder::new(
            Arc::new(bus.clone()),
            TOPIC,
            "relay",
            Arc::new(destination.clone()),
            TOPIC,
        )
        .batch(10);
        let mut stopped = stopped.clone();
        relays.push(tokio::spawn(forwarder.run(async move {
            let _ = stopped.wait_for(|s| *s).await;
        })));
    }
    for n in 0..PER_KEY {
        let mut tx = pool.begin().await.unwrap();
        let batch: Vec<Message> = (0..KEYS)
            .map(|k| {
                Message::builder("shop.OrderChanged", "/orders")
                    .id(format!("k{k}-{n}"))
                    .key(format!("key-{k}"))
                    .build()
                    .unwrap()
            })
            .collect();
        outbox.publish(&mut tx, TOPIC, &batch).await.unwrap();
        tx.commit().await.unwrap();
    }
    let mut next = [0usize; KEYS];
    for _ in 0..KEYS * PER_KEY {
        let delivery = common::next(&mut out).await;
        let id = delivery.message().id().to_owned();
        let (k, n) = id[1..].split_once('-').unwrap();
        let (k, n): (usize, usize) = (k.parse().unwrap(), n.parse().unwrap());
        assert_eq!(n, next[k], "key {k}: got message {n}, expected {}", next[k]);
        next[k] += 1;
        delivery.ack().await.unwrap();
    }
    stop.send(true).unwrap();
    let mut relayed = 0;
    for relay in relays {
        relayed += relay.await.unwrap().unwrap().messages;
    }
    assert_eq!(
        relayed,
        (KEYS * PER_KEY) as u64,
        "each message relayed once"
    );
    let extra = tokio::time::timeout(Duration::from_millis(200), out.next()).await;
    assert!(extra.is_err(), "a message relayed twice");
    // Relayed and acknowledged: retention takes the rows.
    assert_eq!(bus.prune().await.unwrap(), (KEYS * PER_KEY) as u64);
    pool.close().await;
    Publisher::close(&bus).await.unwrap();
}
