//! The two databases of the crash loop: the service writing orders and
//! their events through the outbox (the relay's source), and the service
//! applying the events' effects through the inbox (the consumer).

use std::time::Duration;

use plexus_core::Message;
use plexus_core::bus::{BusError, Seen};
use plexus_postgres::{PostgresBus, PostgresInbox, PostgresOutbox};
use plexus_sqlite::{SqliteBus, SqliteInbox, SqliteOutbox};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{Executor, Row};

/// The inbox's dedupe window: longer than any run.
const WINDOW: Duration = Duration::from_secs(3600);

/// The ordering service's database, with the outbox on the relay's
/// source bus.
pub enum Orders {
    Sqlite(SqlitePool, SqliteOutbox),
    Postgres(PgPool, PostgresOutbox),
}

impl Orders {
    /// Orders on the SQLite bus file of `bus`.
    pub async fn sqlite(bus: &SqliteBus) -> Self {
        let options = SqliteConnectOptions::new()
            .filename(&bus.config().path)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await
            .unwrap();
        pool.execute("CREATE TABLE orders (id TEXT PRIMARY KEY)")
            .await
            .unwrap();
        Orders::Sqlite(pool, SqliteOutbox::new(bus.config()))
    }

    /// Orders in `schema`, the PostgreSQL bus's schema.
    pub async fn postgres(url: &str, schema: &str, bus: &PostgresBus) -> Self {
        let pool = schema_pool(url, schema).await;
        pool.execute("CREATE TABLE orders (id text PRIMARY KEY)")
            .await
            .unwrap();
        Orders::Postgres(pool, PostgresOutbox::for_bus(bus))
    }

    /// Writes one order row and its event per id in one transaction, then
    /// commits it or rolls it back.
    pub async fn place(&self, topic: &str, ids: &[String], commit: bool) -> Result<(), String> {
        let events: Vec<Message> = ids.iter().map(|id| event(id)).collect();
        match self {
            Orders::Sqlite(pool, outbox) => {
                let mut tx = pool.begin().await.map_err(|e| e.to_string())?;
                for id in ids {
                    sqlx::query("INSERT INTO orders (id) VALUES (?1)")
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                outbox
                    .publish(&mut tx, topic, &events)
                    .await
                    .map_err(|e| e.to_string())?;
                finish(tx, commit).await
            }
            Orders::Postgres(pool, outbox) => {
                let mut tx = pool.begin().await.map_err(|e| e.to_string())?;
                sqlx::query("INSERT INTO orders (id) SELECT unnest($1::text[])")
                    .bind(ids)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| e.to_string())?;
                outbox
                    .publish(&mut tx, topic, &events)
                    .await
                    .map_err(|e| e.to_string())?;
                finish(tx, commit).await
            }
        }
    }

    pub async fn close(&self) {
        match self {
            Orders::Sqlite(pool, _) => pool.close().await,
            Orders::Postgres(pool, _) => pool.close().await,
        }
    }
}

/// Commits `tx`, or rolls it back.
async fn finish<DB: sqlx::Database>(
    tx: sqlx::Transaction<'_, DB>,
    commit: bool,
) -> Result<(), String> {
    if commit {
        tx.commit().await
    } else {
        tx.rollback().await
    }
    .map_err(|e| e.to_string())
}

/// The event of order `id`, keyed by a customer (16 of them) so that
/// per-key order is exercised where the destination keeps it.
fn event(id: &str) -> Message {
    let customer = id
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
        % 16;
    Message::builder("shop.OrderPlaced", "/orders")
        .id(id)
        .key(format!("customer-{customer}"))
        .payload("text/plain", id.to_owned())
        .build()
        .unwrap()
}

/// The inventory service's database: the inbox and the effects table (a
/// row per effect applied, no unique constraint: an effect applied twice
/// is two rows).
pub enum Inventory {
    Sqlite(SqlitePool, SqliteInbox),
    Postgres(PgPool, PostgresInbox),
}

impl Inventory {
    /// A SQLite database of its own at `path`.
    pub async fn sqlite(path: &std::path::Path) -> Self {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .unwrap();
        let mut connection = pool.acquire().await.unwrap();
        SqliteInbox::install(&mut connection).await.unwrap();
        connection
            .execute("CREATE TABLE effects (id TEXT NOT NULL)")
            .await
            .unwrap();
        drop(connection);
        Inventory::Sqlite(pool, SqliteInbox::new(WINDOW))
    }

    /// Tables in `schema` (made by the bus) of the server at `url`.
    pub async fn postgres(url: &str, schema: &str) -> Self {
        let pool = schema_pool(url, schema).await;
        let mut connection = pool.acquire().await.unwrap();
        PostgresInbox::install(&mut connection).await.unwrap();
        connection
            .execute("CREATE TABLE effects (id text NOT NULL)")
            .await
            .unwrap();
        drop(connection);
        Inventory::Postgres(pool, PostgresInbox::new(WINDOW))
    }

    /// Applies `message`'s effect through the inbox, in one transaction.
    pub async fn apply(&self, message: &Message) -> Result<Seen, BusError> {
        let failed = |e: sqlx::Error| BusError::backend("inventory", e.to_string());
        match self {
            Inventory::Sqlite(pool, inbox) => {
                let mut tx = pool.begin().await.map_err(failed)?;
                let seen = inbox.process(&mut tx, "inventory", message).await?;
                if seen == Seen::First {
                    sqlx::query("INSERT INTO effects (id) VALUES (?1)")
                        .bind(message.id())
                        .execute(&mut *tx)
                        .await
                        .map_err(failed)?;
                }
                tx.commit().await.map_err(failed)?;
                Ok(seen)
            }
            Inventory::Postgres(pool, inbox) => {
                let mut tx = pool.begin().await.map_err(failed)?;
                let seen = inbox.process(&mut tx, "inventory", message).await?;
                if seen == Seen::First {
                    sqlx::query("INSERT INTO effects (id) VALUES ($1)")
                        .bind(message.id())
                        .execute(&mut *tx)
                        .await
                        .map_err(failed)?;
                }
                tx.commit().await.map_err(failed)?;
                Ok(seen)
            }
        }
    }

    /// Every effect applied: (id, times applied).
    pub async fn effects(&self) -> Vec<(String, i64)> {
        let sql = "SELECT id, count(*) AS n FROM effects GROUP BY id";
        match self {
            Inventory::Sqlite(pool, _) => sqlx::query(sql)
                .fetch_all(pool)
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get::<String, _>("id"), r.get::<i64, _>("n")))
                .collect(),
            Inventory::Postgres(pool, _) => sqlx::query(sql)
                .fetch_all(pool)
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get::<String, _>("id"), r.get::<i64, _>("n")))
                .collect(),
        }
    }

    pub async fn close(&self) {
        match self {
            Inventory::Sqlite(pool, _) => pool.close().await,
            Inventory::Postgres(pool, _) => pool.close().await,
        }
    }
}

/// A pool whose connections work in `schema`.
async fn schema_pool(url: &str, schema: &str) -> PgPool {
    let search_path = format!("SET search_path TO \"{schema}\"");
    PgPoolOptions::new()
        .max_connections(6)
        .after_connect(move |connection, _| {
            let search_path = search_path.clone();
            Box::pin(async move {
                connection.execute(search_path.as_str()).await?;
                Ok(())
            })
        })
        .connect(url)
        .await
        .unwrap()
}
