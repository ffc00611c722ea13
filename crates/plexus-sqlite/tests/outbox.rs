//! The transactional outbox: messages appended in the caller's own
//! transaction exist exactly when it commits, in commit order, and a
//! refused publish leaves the transaction as it was.

mod common;

use std::time::Duration;

use common::{TempDb, next_within, number, numbered, place, service_pool};
use plexus_core::Message;
use plexus_core::bus::{BusError, Publisher, SubscribeOptions, Subscriber, Subscription};
use plexus_sqlite::{SqliteBus, SqliteConfig, SqliteOutbox};
use sqlx::SqlitePool;

const WAIT: Duration = Duration::from_secs(10);

/// A bus on a fresh file (noticing other connections' writes within
/// 10 ms), a `relay` group on its `orders` topic, the service's pool on
/// the same file and the outbox.
struct Shop {
    _db: TempDb,
    bus: SqliteBus,
    config: SqliteConfig,
    relay: Subscription,
    pool: SqlitePool,
    outbox: SqliteOutbox,
}

impl Shop {
    async fn open(capacity: Option<u64>) -> Self {
        let db = TempDb::new();
        let mut config = db.config();
        config.poll_interval = Duration::from_millis(10);
        if let Some(capacity) = capacity {
            config.topic_capacity = capacity;
        }
        let bus = db.open_with(config.clone()).await;
        let relay = bus
            .subscribe("orders", SubscribeOptions::group("relay"))
            .await
            .unwrap();
        let pool = service_pool(&config).await;
        let outbox = SqliteOutbox::new(&config);
        Shop {
            _db: db,
            bus,
            config,
            relay,
            pool,
            outbox,
        }
    }

    /// The numbers of the next `count` deliveries, each acknowledged.
    async fn receive(&mut self, count: usize) -> Vec<usize> {
        let mut received = Vec::new();
        for _ in 0..count {
            let delivery = next_within(&mut self.relay, WAIT).await;
            received.push(number(delivery.message()));
            delivery.ack().await.unwrap();
        }
        received
    }

    async fn close(self) {
        Publisher::close(&self.bus).await.unwrap();
    }
}

async fn orders(pool: &SqlitePool) -> Vec<i64> {
    sqlx::query_scalar("SELECT id FROM orders ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn committed_messages_are_delivered_in_commit_order_and_rolled_back_ones_never() {
    let mut shop = Shop::open(None).await;
    place(&shop.pool, &shop.outbox, 1, true).await;
    place(&shop.pool, &shop.outbox, 2, false).await;
    place(&shop.pool, &shop.outbox, 3, true).await;
    // A message the bus itself publishes after them: the rolled-back one,
    // had it been stored, would come before it.
    shop.bus
        .publish("orders", vec![numbered(4, None)])
        .await
        .unwrap();
    assert_eq!(shop.receive(3).await, [1, 3, 4]);
    assert_eq!(orders(&shop.pool).await, [1, 3]);
    shop.close().await;
}

#[tokio::test]
async fn a_refused_publish_leaves_the_transaction_as_it_was() {
    let mut shop = Shop::open(Some(3)).await;
    let mut tx = shop.pool.begin().await.unwrap();
    sqlx::query("INSERT INTO orders (id) VALUES (1)")
        .execute(&mut *tx)
        .await
        .unwrap();
    // Four messages where the topic has room for three: refused whole.
    let four: Vec<Message> = (10..14).map(|n| numbered(n, None)).collect();
    let full = shop.outbox.publish(&mut tx, "orders", &four).await;
    assert!(matches!(full, Err(BusError::Full { .. })), "{full:?}");
    // A bad topic and a message too large are refused before writing.
    let bad = shop.outbox.publish(&mut tx, "no spaces", &four).await;
    assert!(matches!(bad, Err(BusError::InvalidTopic { .. })), "{bad:?}");
    let big = Message::builder("test.event", "/tests")
        .payload(
            "application/octet-stream",
            vec![0u8; shop.config.max_message_bytes + 1],
        )
        .build()
        .unwrap();
    let large = shop.outbox.publish(&mut tx, "orders", &[big]).await;
    assert!(matches!(large, Err(BusError::TooLarge { .. })), "{large:?}");
    // The transaction goes on: the count the refused batch reserved was
    // taken back, so three fit.
    let three: Vec<Message> = (20..23).map(|n| numbered(n, None)).collect();
    shop.outbox
        .publish(&mut tx, "orders", &three)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(shop.receive(3).await, [20, 21, 22]);
    assert_eq!(orders(&shop.pool).await, [1]);
    shop.close().await;
}

#[tokio::test]
async fn every_attribute_survives_the_outbox() {
    let mut shop = Shop::open(None).await;
    let message = Message::builder("shop.OrderPlaced", "/shop/orders")
        .subject("order-7")
        .key("customer-3")
        .header("traceparent", "00-abc-def-01")
        .payload("application/json", br#"{"total":12}"#.to_vec())
        .build()
        .unwrap();
    let mut tx = shop.pool.begin().await.unwrap();
    shop.outbox
        .publish(&mut tx, "orders", std::slice::from_ref(&message))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let delivery = next_within(&mut shop.relay, WAIT).await;
    assert_eq!(delivery.message(), &message);
    delivery.ack().await.unwrap();
    shop.close().await;
}
