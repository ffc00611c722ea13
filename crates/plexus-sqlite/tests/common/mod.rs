//! Helpers shared by the SQLite bus tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use plexus_core::Message;
use plexus_core::bus::{Delivery, Subscription};
use plexus_sqlite::{SqliteBus, SqliteConfig, SqliteOutbox};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

/// A fresh database path in its own temporary directory (removed on drop).
pub struct TempDb {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl TempDb {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("bus.db");
        TempDb { dir, path }
    }

    pub fn config(&self) -> SqliteConfig {
        SqliteConfig::new(&self.path)
    }

    pub async fn open(&self) -> SqliteBus {
        SqliteBus::open(&self.path).await.expect("the bus opens")
    }

    pub async fn open_with(&self, config: SqliteConfig) -> SqliteBus {
        SqliteBus::with_config(config).await.expect("the bus opens")
    }
}

/// A message of type `test.event` numbered `n`, with `key` if given.
pub fn numbered(n: usize, key: Option<&str>) -> Message {
    let mut builder = Message::builder("test.event", "/tests")
        .id(format!("m-{n}"))
        .payload("text/plain", n.to_string().into_bytes());
    if let Some(key) = key {
        builder = builder.key(key);
    }
    builder.build().expect("a valid message")
}

/// The number in a [`numbered`] message.
pub fn number(message: &Message) -> usize {
    std::str::from_utf8(message.payload())
        .expect("utf-8")
        .parse()
        .expect("a number")
}

/// The next delivery, within `limit`.
pub async fn next_within(subscription: &mut Subscription, limit: Duration) -> Delivery {
    match tokio::time::timeout(limit, subscription.next()).await {
        Ok(Some(Ok(delivery))) => delivery,
        Ok(Some(Err(error))) => panic!("the subscription failed: {error}"),
        Ok(None) => panic!("the subscription ended"),
        Err(_) => panic!("no delivery within {limit:?}"),
    }
}

/// Asserts that nothing is delivered within `wait`.
pub async fn nothing_within(subscription: &mut Subscription, wait: Duration) {
    if let Ok(item) = tokio::time::timeout(wait, subscription.next()).await {
        match item {
            Some(Ok(delivery)) => panic!(
                "unexpected delivery of {} (attempt {})",
                delivery.message().id(),
                delivery.attempt()
            ),
            Some(Err(error)) => panic!("the subscription failed: {error}"),
            None => panic!("the subscription ended"),
        }
    }
}

/// A read-only look at the database, for what the bus API does not show.
pub async fn scalar(path: &Path, sql: &str) -> i64 {
    use sqlx::Connection;
    let url = format!("sqlite://{}?mode=ro", path.display());
    let mut connection = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("a read-only connection");
    let value: i64 = sqlx::query_scalar(sql)
        .fetch_one(&mut connection)
        .await
        .expect("the query runs");
    connection.close().await.expect("closes");
    value
}

/// Waits until `sql` returns `expected`, for at most `limit`.
pub async fn wait_for_scalar(path: &Path, sql: &str, expected: i64, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let value = scalar(path, sql).await;
        if value == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "`{sql}` is {value}, expected {expected} within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The service's own connections on the bus's file, with an `orders`
/// table of its own.
pub async fn service_pool(config: &SqliteConfig) -> SqlitePool {
    let options = SqliteConnectOptions::new()
        .filename(&config.path)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
        .execute(&pool)
        .await
        .unwrap();
    pool
}

/// Places order `n` and publishes its message in one transaction, then
/// commits it through the outbox (waking the bus of an outbox made for
/// it) or rolls it back.
pub async fn place(pool: &SqlitePool, outbox: &SqliteOutbox, n: usize, commit: bool) {
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("INSERT INTO orders (id) VALUES (?1)")
        .bind(n as i64)
        .execute(&mut *tx)
        .await
        .unwrap();
    outbox
        .publish(&mut tx, "orders", &[numbered(n, None)])
        .await
        .unwrap();
    if commit {
        outbox.commit(tx).await.unwrap();
    } else {
        tx.rollback().await.unwrap();
    }
}

/// Commits `tx`, or rolls it back.
pub async fn finish(tx: sqlx::Transaction<'_, sqlx::Sqlite>, commit: bool) {
    if commit {
        tx.commit().await.unwrap();
    } else {
        tx.rollback().await.unwrap();
    }
}
