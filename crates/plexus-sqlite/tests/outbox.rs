//! The transactional outbox: messages written in the caller's own
//! transaction exist exactly when it commits, reach their topics in
//! commit order, and a refused publish leaves the transaction as it was.

mod common;

use std::time::Duration;

use common::{TempDb, next_within, number, numbered, place, service_pool, wait_for_scalar};
use plexus_core::Message;
use plexus_core::bus::{BusError, Publisher, SubscribeOptions, Subscriber, Subscription};
use plexus_sqlite::{SqliteBus, SqliteConfig, SqliteOutbox};
use sqlx::SqlitePool;

const WAIT: Duration = Duration::from_secs(10);

/// A bus on a fresh file (noticing other connections' writes within
/// 10 ms), a `relay` group on its `orders` topic, the service's pool on
/// the same file and the outbox for the bus (only a commit through it
/// wakes the bus; others are found by the bus's poll).
struct Shop {
    _db: TempDb,
    bus: SqliteBus,
    config: SqliteConfig,
    relay: Subscription,
    pool: SqlitePool,
    outbox: SqliteOutbox,
}

impl Shop {
    async fn open(configure: impl FnOnce(&mut SqliteConfig)) -> Self {
        let db = TempDb::new();
        let mut config = db.config();
        config.poll_interval = Duration::from_millis(10);
        configure(&mut config);
        let bus = db.open_with(config.clone()).await;
        let relay = bus
            .subscribe("orders", SubscribeOptions::group("relay"))
            .await
            .unwrap();
        let pool = service_pool(&config).await;
        let outbox = SqliteOutbox::for_bus(&bus);
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
    let mut shop = Shop::open(|_| {}).await;
    place(&shop.pool, &shop.outbox, 1, true).await;
    place(&shop.pool, &shop.outbox, 2, false).await;
    place(&shop.pool, &shop.outbox, 3, true).await;
    // A message the bus itself publishes after their commits (through
    // the outbox, which wakes the bus): the rolled-back one, had it been
    // stored, would come before it.
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
    let mut shop = Shop::open(|c| c.outbox_capacity = 3).await;
    let mut tx = shop.pool.begin().await.unwrap();
    sqlx::query("INSERT INTO orders (id) VALUES (1)")
        .execute(&mut *tx)
        .await
        .unwrap();
    // Four messages where the outbox has room for three: refused whole.
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
    // The transaction goes on without them, so three fit.
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
    let mut shop = Shop::open(|_| {}).await;
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

/// The messages of `topic` in the outbox as `tx` sees it.
async fn in_outbox(tx: &mut sqlx::SqliteConnection, topic: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM plexus_outbox WHERE topic = ?1")
        .bind(topic)
        .fetch_one(tx)
        .await
        .unwrap()
}

#[tokio::test]
async fn batches_of_every_size_arrive_whole_and_in_order() {
    let mut shop = Shop::open(|_| {}).await;
    let mut tx = shop.pool.begin().await.unwrap();
    // One INSERT of each small size; chunks of powers of two past them.
    let mut next = 0;
    for size in [1, 2, 16, 17, 31, 40, 100] {
        let batch: Vec<Message> = (next..next + size).map(|n| numbered(n, None)).collect();
        shop.outbox
            .publish(&mut tx, "orders", &batch)
            .await
            .unwrap();
        next += size;
    }
    assert_eq!(in_outbox(&mut tx, "orders").await, next as i64);
    tx.commit().await.unwrap();
    let all = shop.receive(next).await;
    assert_eq!(all, (0..next).collect::<Vec<_>>());
    shop.close().await;
}

#[tokio::test]
async fn the_first_publish_to_a_topic_makes_it() {
    let shop = Shop::open(|_| {}).await;
    let mut tx = shop.pool.begin().await.unwrap();
    let two = [numbered(1, None), numbered(2, None)];
    shop.outbox
        .publish(&mut tx, "invoices", &two)
        .await
        .unwrap();
    assert_eq!(in_outbox(&mut tx, "invoices").await, 2);
    tx.commit().await.unwrap();
    let mut invoices = shop
        .bus
        .subscribe("invoices", SubscribeOptions::group("a").from_earliest())
        .await
        .unwrap();
    for n in [1, 2] {
        let delivery = next_within(&mut invoices, WAIT).await;
        assert_eq!(number(delivery.message()), n);
        delivery.ack().await.unwrap();
    }
    shop.close().await;
}

#[tokio::test]
async fn a_failed_insert_leaves_the_transaction_as_it_was() {
    let mut shop = Shop::open(|_| {}).await;
    let mut tx = shop.pool.begin().await.unwrap();
    sqlx::query("INSERT INTO orders (id) VALUES (1)")
        .execute(&mut *tx)
        .await
        .unwrap();
    // Every outbox insert fails.
    sqlx::query(
        "CREATE TEMP TRIGGER refuse BEFORE INSERT ON plexus_outbox \
         BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    let failed = shop
        .outbox
        .publish(&mut tx, "orders", &[numbered(1, None)])
        .await;
    assert!(
        matches!(&failed, Err(BusError::Backend { reason, .. }) if reason.contains("refused by the test")),
        "{failed:?}"
    );
    assert_eq!(in_outbox(&mut tx, "orders").await, 0);
    sqlx::query("DROP TRIGGER temp.refuse")
        .execute(&mut *tx)
        .await
        .unwrap();
    shop.outbox
        .publish(&mut tx, "orders", &[numbered(2, None)])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(shop.receive(1).await, [2]);
    assert_eq!(orders(&shop.pool).await, [1]);
    shop.close().await;
}

#[tokio::test]
async fn a_transaction_that_sqlite_rolled_back_is_reported_and_left_alone() {
    use sqlx::Connection as _;
    let shop = Shop::open(|_| {}).await;
    let mut connection = shop.pool.acquire().await.unwrap().detach();
    let mut tx = connection.begin().await.unwrap();
    sqlx::query("INSERT INTO orders (id) VALUES (1)")
        .execute(&mut *tx)
        .await
        .unwrap();
    // The message insert ends the whole transaction, as a full disk may.
    sqlx::query(
        "CREATE TEMP TRIGGER refuse BEFORE INSERT ON plexus_outbox \
         BEGIN SELECT RAISE(ROLLBACK, 'rolled back by the test'); END",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    let failed = shop
        .outbox
        .publish(&mut tx, "orders", &[numbered(1, None)])
        .await;
    assert!(
        matches!(&failed, Err(BusError::Backend { reason, .. }) if reason.contains("rolled the caller's transaction back")),
        "{failed:?}"
    );
    assert!(
        tx.commit().await.is_err(),
        "no transaction is left to commit"
    );
    assert_eq!(orders(&shop.pool).await, Vec::<i64>::new());
    drop(connection);
    shop.close().await;
}

/// The publish's future is `Send` for any lifetimes of its arguments: a
/// service may run it on a spawned task, or in a handler that must be
/// `Send` (the shop's are).
#[tokio::test]
async fn a_publish_may_run_on_another_task() {
    let mut shop = Shop::open(|_| {}).await;
    let (pool, outbox) = (shop.pool.clone(), shop.outbox.clone());
    tokio::spawn(async move {
        let mut tx = pool.begin().await.unwrap();
        outbox
            .publish(&mut tx, "orders", &[numbered(1, None)])
            .await
            .unwrap();
        tx.commit().await.unwrap();
    })
    .await
    .unwrap();
    assert_eq!(shop.receive(1).await, [1]);
    shop.close().await;
}

/// Commits `numbers` to `topic` through the outbox, one transaction.
async fn commit_numbers(shop: &Shop, topic: &str, numbers: std::ops::Range<usize>) {
    let messages: Vec<Message> = numbers.map(|n| numbered(n, None)).collect();
    let mut tx = shop.pool.begin().await.unwrap();
    shop.outbox
        .publish(&mut tx, topic, &messages)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// Waits until the outbox holds `count` messages, within [`WAIT`].
async fn outbox_holds(shop: &Shop, count: i64) {
    let sql = "SELECT count(*) FROM plexus_outbox";
    wait_for_scalar(&shop.config.path, sql, count, WAIT).await;
}

#[tokio::test]
async fn a_full_topic_holds_its_outbox_messages_in_order_and_the_others_move_on() {
    let mut shop = Shop::open(|c| c.topic_capacity = 2).await;
    let mut invoices = shop
        .bus
        .subscribe("invoices", SubscribeOptions::group("a"))
        .await
        .unwrap();
    commit_numbers(&shop, "orders", 1..6).await;
    commit_numbers(&shop, "invoices", 10..11).await;
    // Invoices do not wait behind the full orders topic.
    let delivery = next_within(&mut invoices, WAIT).await;
    assert_eq!(number(delivery.message()), 10);
    delivery.ack().await.unwrap();
    // Two orders fit the topic; three wait in the outbox.
    outbox_holds(&shop, 3).await;
    // As the relay acknowledges, the rest follow, in order.
    assert_eq!(shop.receive(5).await, [1, 2, 3, 4, 5]);
    outbox_holds(&shop, 0).await;
    shop.close().await;
}

#[tokio::test]
async fn a_row_that_is_not_a_message_holds_up_its_topic_only() {
    let mut shop = Shop::open(|_| {}).await;
    let mut invoices = shop
        .bus
        .subscribe("invoices", SubscribeOptions::group("a"))
        .await
        .unwrap();
    // A row written by something else, with a time out of range.
    sqlx::query(
        "INSERT INTO plexus_outbox (topic, id, source, type, time_s, time_ns, payload) \
         VALUES ('orders', 'bad', '/tests', 'test.event', 0, 2000000000, x'')",
    )
    .execute(&shop.pool)
    .await
    .unwrap();
    commit_numbers(&shop, "orders", 1..2).await;
    commit_numbers(&shop, "invoices", 10..11).await;
    let delivery = next_within(&mut invoices, WAIT).await;
    assert_eq!(number(delivery.message()), 10);
    delivery.ack().await.unwrap();
    // The order waits behind the bad row, which stays.
    outbox_holds(&shop, 2).await;
    sqlx::query("DELETE FROM plexus_outbox WHERE id = 'bad'")
        .execute(&shop.pool)
        .await
        .unwrap();
    assert_eq!(shop.receive(1).await, [1]);
    outbox_holds(&shop, 0).await;
    shop.close().await;
}
