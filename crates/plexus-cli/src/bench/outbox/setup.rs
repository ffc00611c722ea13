//! Opening the source: the bus on the database, the service's pool and
//! its tables (an order table and an order-line table); dropping the
//! run's schema on PostgreSQL; and URLs fit to print.

use std::time::Duration;

use anyhow::Context as _;
use plexus_core::bus::Publisher;
use plexus_postgres::{PostgresBus, PostgresConfig, PostgresOutbox};
use plexus_sqlite::{SqliteBus, SqliteOutbox};
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection as _, Executor as _};

/// The service's database and the bus on it, by source.
#[expect(
    clippy::large_enum_variant,
    reason = "one store per run, made once and never moved again"
)]
pub(super) enum Store {
    Postgres {
        bus: PostgresBus,
        outbox: PostgresOutbox,
        pool: PgPool,
        /// The database URL, without the bus's `schema` parameter.
        url: String,
        schema: String,
        insert_order: String,
        insert_lines: String,
    },
    Sqlite {
        bus: SqliteBus,
        outbox: SqliteOutbox,
        pool: SqlitePool,
        /// Holds the database file until the shop is dropped.
        _dir: tempfile::TempDir,
    },
}

pub(super) async fn open_postgres(
    url: &str,
    schema: &str,
    connections: u32,
) -> anyhow::Result<Store> {
    let mut config = PostgresConfig::from_url(url)
        .with_context(|| format!("--postgres `{}` is not a PostgreSQL URL", redact(url)))?;
    config.schema = schema.to_owned();
    let url = config.url.clone();
    let hint = || {
        format!(
            "connecting to PostgreSQL at {} (is the server up? give another with --postgres)",
            redact(&url)
        )
    };
    let bus = PostgresBus::with_config(config).await.with_context(hint)?;
    // The bus made the schema: from here on a failure drops it again.
    match tables(&url, schema, connections).await {
        Ok(pool) => Ok(Store::Postgres {
            outbox: PostgresOutbox::for_bus(&bus),
            insert_order: format!(
                "INSERT INTO {schema}.orders (id, customer_id, total_cents) VALUES ($1, $2, $3)"
            ),
            insert_lines: format!(
                "INSERT INTO {schema}.order_lines (order_id, line, sku, quantity, unit_price_cents) \
                 VALUES ($1, 1, $2, $3, $4), ($1, 2, $5, $6, $7), ($1, 3, $8, $9, $10)"
            ),
            bus,
            pool,
            url,
            schema: schema.to_owned(),
        }),
        Err(error) => {
            let _ = Publisher::close(&bus).await;
            if let Err(dropped) = drop_schema(&url, schema).await {
                eprintln!("warning: {dropped:#}");
            }
            Err(error)
        }
    }
}

/// The service's pool on the database at `url`, and its tables in
/// `schema`.
async fn tables(url: &str, schema: &str, connections: u32) -> anyhow::Result<PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .with_context(|| {
            format!(
                "connecting to PostgreSQL at {} (is the server up? give another with --postgres)",
                redact(url)
            )
        })?;
    for statement in [
        format!(
            "CREATE TABLE {schema}.orders (id text PRIMARY KEY, customer_id text NOT NULL, \
             total_cents bigint NOT NULL, status text NOT NULL DEFAULT 'PLACED', \
             placed_at timestamptz NOT NULL DEFAULT now())"
        ),
        format!(
            "CREATE TABLE {schema}.order_lines (order_id text NOT NULL REFERENCES {schema}.orders (id), \
             line int NOT NULL, sku text NOT NULL, quantity bigint NOT NULL, \
             unit_price_cents bigint NOT NULL, PRIMARY KEY (order_id, line))"
        ),
    ] {
        pool.execute(statement.as_str())
            .await
            .with_context(|| format!("creating the service's tables in schema {schema}"))?;
    }
    Ok(pool)
}

pub(super) async fn open_sqlite(connections: u32) -> anyhow::Result<Store> {
    let dir = tempfile::tempdir()
        .context("creating a temporary folder for the SQLite database (is TMPDIR writable?)")?;
    let path = dir.path().join("outbox.db");
    let bus = SqliteBus::open(&path)
        .await
        .with_context(|| format!("opening the SQLite bus at {}", path.display()))?;
    let outbox = SqliteOutbox::for_bus(&bus);
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(bus.config().busy_timeout);
    let pool = SqlitePoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .with_context(|| format!("opening the service's connections to {}", path.display()))?;
    for statement in [
        "CREATE TABLE orders (id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, \
         total_cents INTEGER NOT NULL, status TEXT NOT NULL DEFAULT 'PLACED', \
         placed_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)",
        "CREATE TABLE order_lines (order_id TEXT NOT NULL REFERENCES orders (id), \
         line INTEGER NOT NULL, sku TEXT NOT NULL, quantity INTEGER NOT NULL, \
         unit_price_cents INTEGER NOT NULL, PRIMARY KEY (order_id, line))",
    ] {
        pool.execute(statement)
            .await
            .with_context(|| format!("creating the service's tables in {}", path.display()))?;
    }
    Ok(Store::Sqlite {
        bus,
        outbox,
        pool,
        _dir: dir,
    })
}

/// Drops `schema` with everything in it, on a connection of its own.
pub(super) async fn drop_schema(url: &str, schema: &str) -> anyhow::Result<()> {
    let what = || {
        format!(
            "dropping the bench's schema {schema} at {} (drop it by hand: DROP SCHEMA {schema} CASCADE)",
            redact(url)
        )
    };
    let mut connection = PgConnection::connect(url).await.with_context(what)?;
    connection
        .execute("SET lock_timeout = '10s'")
        .await
        .with_context(what)?;
    connection
        .execute(format!("DROP SCHEMA IF EXISTS {schema} CASCADE").as_str())
        .await
        .with_context(what)?;
    connection.close().await.with_context(what)
}

/// `url` with the password of its user part, if any, replaced by `***`:
/// fit for messages and the results file.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    match rest[..at].split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact("postgres://u:secret@db:5432/x?a=b"),
            "postgres://u:***@db:5432/x?a=b"
        );
        assert_eq!(
            redact("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres@127.0.0.1/test"
        );
        assert_eq!(redact("memory:"), "memory:");
        assert_eq!(
            redact("nats://127.0.0.1:4222/?stream=a@b"),
            "nats://127.0.0.1:4222/?stream=a@b"
        );
    }
}
