//! The inbox: an effect applied once per message and consumer, however
//! often the message comes; a rolled-back effect leaves no record; old
//! records are pruned in bounded batches.

mod common;

use std::time::Duration;

use common::{finish, numbered};
use plexus_core::bus::BusError;
use plexus_sqlite::{Seen, SqliteInbox};
use sqlx::SqlitePool;
use sqlx::sqlite::SqlitePoolOptions;

/// A database with the inbox table and a `stock` counter the effects
/// change.
async fn database() -> (tempfile::TempDir, SqlitePool) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("svc.db").display());
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    let mut connection = pool.acquire().await.unwrap();
    SqliteInbox::install(&mut connection).await.unwrap();
    sqlx::query("CREATE TABLE stock (reserved INTEGER NOT NULL)")
        .execute(&mut *connection)
        .await
        .unwrap();
    sqlx::query("INSERT INTO stock VALUES (0)")
        .execute(&mut *connection)
        .await
        .unwrap();
    drop(connection);
    (dir, pool)
}

/// Handles message `n` as `consumer`: reserves one unit of stock the
/// first time, then commits (or rolls back); what the inbox said.
async fn handle(
    pool: &SqlitePool,
    inbox: &SqliteInbox,
    consumer: &str,
    n: usize,
    commit: bool,
) -> Seen {
    let mut tx = pool.begin().await.unwrap();
    let seen = inbox
        .process(&mut tx, consumer, &numbered(n, None))
        .await
        .unwrap();
    if seen == Seen::First {
        sqlx::query("UPDATE stock SET reserved = reserved + 1")
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    finish(tx, commit).await;
    seen
}

/// What the inbox said to each of `steps` (consumer, message, commit),
/// handled in order.
async fn handle_all(
    pool: &SqlitePool,
    inbox: &SqliteInbox,
    steps: &[(&str, usize, bool)],
) -> Vec<Seen> {
    let mut seen = Vec::new();
    for &(consumer, n, commit) in steps {
        seen.push(handle(pool, inbox, consumer, n, commit).await);
    }
    seen
}

async fn reserved(pool: &SqlitePool) -> i64 {
    sqlx::query_scalar("SELECT reserved FROM stock")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_redelivered_message_is_applied_once_per_consumer() {
    let (_dir, pool) = database().await;
    let inbox = SqliteInbox::new(Duration::from_secs(3600));
    let steps = [
        ("inventory", 1, true),
        ("inventory", 1, true),
        ("inventory", 1, true),
        // Another consumer has its own record of the same message.
        ("billing", 1, true),
        ("inventory", 2, true),
    ];
    let seen = handle_all(&pool, &inbox, &steps).await;
    use Seen::{Again, First};
    assert_eq!(seen, [First, Again, Again, First, First]);
    assert_eq!(reserved(&pool).await, 3);
}

#[tokio::test]
async fn a_rolled_back_effect_leaves_no_record() {
    let (_dir, pool) = database().await;
    let inbox = SqliteInbox::new(Duration::from_secs(3600));
    // Rolled back, then delivered again: a first time again, applied once.
    let steps = [
        ("inventory", 1, false),
        ("inventory", 1, true),
        ("inventory", 1, true),
    ];
    let seen = handle_all(&pool, &inbox, &steps).await;
    use Seen::{Again, First};
    assert_eq!(seen, [First, First, Again]);
    assert_eq!(reserved(&pool).await, 1);
}

#[tokio::test]
async fn pruning_deletes_records_past_the_window_in_bounded_batches() {
    let (_dir, pool) = database().await;
    let kept = SqliteInbox::new(Duration::from_secs(3600));
    for n in 0..5 {
        handle(&pool, &kept, "inventory", n, true).await;
    }
    let mut connection = pool.acquire().await.unwrap();
    // Inside the window: nothing goes.
    assert_eq!(kept.prune(&mut connection).await.unwrap(), 0);
    // A window of zero: every record is past it, two a call.
    let expiring = SqliteInbox::new(Duration::ZERO).prune_batch(2);
    let deleted = [
        expiring.prune(&mut connection).await.unwrap(),
        expiring.prune(&mut connection).await.unwrap(),
        expiring.prune(&mut connection).await.unwrap(),
        expiring.prune(&mut connection).await.unwrap(),
    ];
    assert_eq!(deleted, [2, 2, 1, 0]);
    drop(connection);
    // Forgotten: the message counts as new again.
    assert_eq!(
        handle(&pool, &kept, "inventory", 0, true).await,
        Seen::First
    );
}

#[tokio::test]
async fn a_consumer_without_a_name_is_refused() {
    let (_dir, pool) = database().await;
    let inbox = SqliteInbox::new(Duration::from_secs(60));
    let mut tx = pool.begin().await.unwrap();
    let refused = inbox.process(&mut tx, "", &numbered(1, None)).await;
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
}
