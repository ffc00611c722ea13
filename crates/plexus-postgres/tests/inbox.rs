//! The PostgreSQL inbox: an effect applied once per message and consumer,
//! however often and however concurrently the message comes; a
//! rolled-back effect leaves no record; old records are pruned in bounded
//! batches.

mod common;

use std::time::Duration;

use common::Schema;
use plexus_core::Message;
use plexus_core::bus::BusError;
use plexus_postgres::{PostgresInbox, Seen};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, PgPool};

/// The service's pool, its connections in the test's schema, holding the
/// inbox table and a `stock` counter the effects change; `None` (after
/// the skip line) when the server is unreachable.
async fn database(schema: &Schema, test: &str) -> Option<PgPool> {
    let search_path = format!("SET search_path TO \"{}\"", schema.name);
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .after_connect(move |connection, _| {
            let search_path = search_path.clone();
            Box::pin(async move {
                connection.execute(search_path.as_str()).await?;
                Ok(())
            })
        })
        .acquire_timeout(Duration::from_secs(5))
        .connect(&schema.url)
        .await;
    let pool = match pool {
        Ok(pool) => pool,
        Err(e) => {
            common::skip_or_fail(test, &e.to_string());
            return None;
        }
    };
    pool.execute(format!("CREATE SCHEMA \"{}\"", schema.name).as_str())
        .await
        .unwrap();
    let mut connection = pool.acquire().await.unwrap();
    PostgresInbox::install(&mut connection).await.unwrap();
    connection
        .execute("CREATE TABLE stock (reserved integer NOT NULL); INSERT INTO stock VALUES (0)")
        .await
        .unwrap();
    Some(pool)
}

fn numbered(n: usize) -> Message {
    Message::builder("shop.OrderPlaced", "/orders")
        .id(format!("order-{n}"))
        .build()
        .unwrap()
}

/// Handles message `n` as `consumer`: reserves one unit of stock the
/// first time, then commits (or rolls back); what the inbox said.
async fn handle(
    pool: &PgPool,
    inbox: &PostgresInbox,
    consumer: &str,
    n: usize,
    commit: bool,
) -> Seen {
    let mut tx = pool.begin().await.unwrap();
    let seen = inbox
        .process(&mut tx, consumer, &numbered(n))
        .await
        .unwrap();
    if seen == Seen::First {
        sqlx::query("UPDATE stock SET reserved = reserved + 1")
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    if commit {
        tx.commit().await.unwrap();
    } else {
        tx.rollback().await.unwrap();
    }
    seen
}

async fn reserved(pool: &PgPool) -> i32 {
    sqlx::query_scalar("SELECT reserved FROM stock")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_message_is_applied_once_per_consumer() {
    let schema = Schema::fresh(&common::machine_url());
    let Some(pool) = database(&schema, "a_redelivered_message_is_applied_once").await else {
        return;
    };
    let inbox = PostgresInbox::new(Duration::from_secs(3600));
    let mut seen = Vec::new();
    for (consumer, n, commit) in [
        ("inventory", 1, true),
        ("inventory", 1, true),
        // Rolled back: no record, and the stock unchanged.
        ("inventory", 2, false),
        ("inventory", 2, true),
        ("inventory", 2, true),
        // Another consumer keeps its own records.
        ("billing", 1, true),
    ] {
        seen.push(handle(&pool, &inbox, consumer, n, commit).await);
    }
    use Seen::{Again, First};
    assert_eq!(seen, [First, Again, First, First, Again, First]);
    assert_eq!(reserved(&pool).await, 3);
    pool.close().await;
}

/// Two members handle the same message at once: the second's record
/// waits for the first transaction and finds it committed, so the effect
/// is applied once; when the first rolls back, the second's is the first
/// time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deliveries_of_one_message_apply_it_once() {
    let schema = Schema::fresh(&common::machine_url());
    let Some(pool) = database(&schema, "concurrent_deliveries_apply_once").await else {
        return;
    };
    let inbox = PostgresInbox::new(Duration::from_secs(3600));
    for (first_commits, expected_second) in [(true, Seen::Again), (false, Seen::First)] {
        let message = numbered(if first_commits { 10 } else { 11 });
        let mut first = pool.begin().await.unwrap();
        assert_eq!(
            inbox
                .process(&mut first, "inventory", &message)
                .await
                .unwrap(),
            Seen::First
        );
        let second = {
            let (pool, inbox, message) = (pool.clone(), inbox.clone(), message.clone());
            tokio::spawn(async move {
                let mut tx = pool.begin().await.unwrap();
                let seen = inbox.process(&mut tx, "inventory", &message).await.unwrap();
                tx.commit().await.unwrap();
                seen
            })
        };
        // The second waits on the first's row lock until the first ends.
        let mut control = pool.acquire().await.unwrap();
        let waiting = async {
            loop {
                let waiting: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'transactionid'",
                )
                .fetch_one(&mut *control)
                .await
                .unwrap();
                if waiting > 0 {
                    break;
                }
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("the second delivery's record waits for the first transaction");
        drop(control);
        if first_commits {
            first.commit().await.unwrap();
        } else {
            first.rollback().await.unwrap();
        }
        assert_eq!(second.await.unwrap(), expected_second);
    }
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_deletes_records_past_the_window_in_bounded_batches() {
    let schema = Schema::fresh(&common::machine_url());
    let Some(pool) = database(&schema, "pruning_deletes_records").await else {
        return;
    };
    let kept = PostgresInbox::new(Duration::from_secs(3600));
    for n in 0..5 {
        handle(&pool, &kept, "inventory", n, true).await;
    }
    let mut connection = pool.acquire().await.unwrap();
    assert_eq!(kept.prune(&mut connection).await.unwrap(), 0);
    let expiring = PostgresInbox::new(Duration::ZERO).prune_batch(2);
    let mut deleted = Vec::new();
    for _ in 0..4 {
        deleted.push(expiring.prune(&mut connection).await.unwrap());
    }
    assert_eq!(deleted, [2, 2, 1, 0]);
    drop(connection);
    assert_eq!(
        handle(&pool, &kept, "inventory", 0, true).await,
        Seen::First
    );
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_without_a_name_is_refused() {
    let schema = Schema::fresh(&common::machine_url());
    let Some(pool) = database(&schema, "a_consumer_without_a_name").await else {
        return;
    };
    let inbox = PostgresInbox::new(Duration::from_secs(60));
    let mut tx = pool.begin().await.unwrap();
    let refused = inbox.process(&mut tx, "", &numbered(1)).await;
    assert!(
        matches!(
            refused,
            Err(BusError::InvalidOption {
                option: "consumer",
                ..
            })
        ),
        "{refused:?}"
    );
    drop(tx);
    pool.close().await;
}
