//! The outbox visibility gap (TESTING.md; Watermill's
//! `TestNotMissingMessages`): messages written in transactions that
//! commit in the reverse of the order they wrote in are all delivered, in
//! their key's order, and a rolled-back one never is.
//!
//! Four transactions write one message each, as an outbox would (plain
//! INSERTs, the documented schema): tx0, tx1, a rolled-back one, tx2, all
//! of one key. tx2 commits first, then the rolled-back one rolls back,
//! then tx1 and tx0 commit. A member claiming through SQL after each
//! commit must get nothing while tx0 is open (an earlier message of the
//! key could still appear; a cursor moved past tx2's message would skip
//! tx0's and tx1's for good); a bus subscription of the same group gets
//! the three committed messages in order once tx0 commits, and then a
//! message published after them, never the rolled-back one.

mod common;

use std::time::Duration;

use common::Schema;
use futures::StreamExt;
use plexus_core::Message;
use plexus_core::bus::{Publisher, SubscribeOptions, Subscriber};
use plexus_postgres::PostgresBus;
use sqlx::{Connection, PgConnection, Row};

const TOPIC: &str = "outbox.orders";
const GROUP: &str = "shipping";
const KEY: &str = "order-7";
const WAIT: Duration = Duration::from_secs(30);

/// Begins a transaction on `connection` and writes message `name` in it.
async fn write_in_transaction(connection: &mut PgConnection, schema: &str, name: &str) {
    sqlx::query("BEGIN")
        .execute(&mut *connection)
        .await
        .unwrap();
    sqlx::query(&format!(
        "INSERT INTO \"{schema}\".messages (topic, id, source, type, partitionkey, data) \
         VALUES ($1, $2, '/outbox', 'shop.OrderChanged', $3, $4)"
    ))
    .bind(TOPIC)
    .bind(name)
    .bind(KEY)
    .bind(name.as_bytes())
    .execute(&mut *connection)
    .await
    .unwrap();
}

async fn finish(connection: &mut PgConnection, schema: &str, how: &str) {
    sqlx::query(how).execute(&mut *connection).await.unwrap();
    if how == "COMMIT" {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(schema)
            .bind(TOPIC)
            .execute(&mut *connection)
            .await
            .unwrap();
    }
}

/// What a claim through SQL by another member of the group leases: the
/// ids, none when it finds nothing.
async fn claim_through_sql(connection: &mut PgConnection, schema: &str, group: i64) -> Vec<String> {
    let rows = sqlx::query(&format!(
        "SELECT id FROM \"{schema}\".claim($1, 'sql-member', 10, 60000, 1000) WHERE seq IS NOT NULL"
    ))
    .bind(group)
    .fetch_all(&mut *connection)
    .await
    .unwrap();
    rows.iter().map(|row| row.get::<String, _>("id")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_commits_are_not_skipped_and_keep_their_order() {
    let url = common::machine_url();
    let schema = Schema::fresh(&url);
    let bus = match PostgresBus::with_config(schema.config()).await {
        Ok(bus) => bus,
        Err(e) => return common::skip_or_fail("late_commits_are_not_skipped", &e.to_string()),
    };
    let mut subscription = bus
        .subscribe(TOPIC, SubscribeOptions::group(GROUP))
        .await
        .unwrap();
    let name = &schema.name;
    let mut control = schema.connect().await;
    let group: i64 = sqlx::query_scalar(&format!(
        "SELECT id FROM \"{name}\".groups WHERE topic = $1 AND name = $2"
    ))
    .bind(TOPIC)
    .bind(GROUP)
    .fetch_one(&mut control)
    .await
    .unwrap();

    let mut tx0 = schema.connect().await;
    let mut tx1 = schema.connect().await;
    let mut rolled_back = schema.connect().await;
    let mut tx2 = schema.connect().await;
    write_in_transaction(&mut tx0, name, "m0").await;
    write_in_transaction(&mut tx1, name, "m1").await;
    write_in_transaction(&mut rolled_back, name, "rolled-back").await;
    write_in_transaction(&mut tx2, name, "m2").await;

    finish(&mut tx2, name, "COMMIT").await;
    assert_eq!(
        claim_through_sql(&mut control, name, group).await,
        Vec::<String>::new(),
        "with tx0 and tx1 open, a claim must not hand out tx2's message"
    );
    finish(&mut rolled_back, name, "ROLLBACK").await;
    finish(&mut tx1, name, "COMMIT").await;
    assert_eq!(
        claim_through_sql(&mut control, name, group).await,
        Vec::<String>::new(),
        "with tx0 open, a claim must not hand out tx1's or tx2's message"
    );
    finish(&mut tx0, name, "COMMIT").await;

    bus.publish(
        TOPIC,
        vec![
            Message::builder("shop.OrderChanged", "/outbox")
                .id("after")
                .key(KEY)
                .build()
                .unwrap(),
        ],
    )
    .await
    .unwrap();
    let mut got = Vec::new();
    while got.last().map(String::as_str) != Some("after") {
        let delivery = tokio::time::timeout(WAIT, subscription.next())
            .await
            .unwrap_or_else(|_| panic!("only {got:?} delivered within {WAIT:?}"))
            .expect("the subscription goes on")
            .expect("a delivery");
        got.push(delivery.message().id().to_owned());
        delivery.ack().await.unwrap();
    }
    assert_eq!(got, ["m0", "m1", "m2", "after"]);
    for connection in [control, tx0, tx1, rolled_back, tx2] {
        let _ = connection.close().await;
    }
    drop(subscription);
    Publisher::close(&bus).await.unwrap();
}
