//! Setting the schema up, and the retention task.

use std::sync::Arc;
use std::time::Duration;

use sqlx::{Acquire, PgPool};
use tokio_util::sync::CancellationToken;

use super::schema;
use super::statements::Statements;
use crate::PostgresConfig;

/// Messages one retention transaction deletes per topic at most. Short
/// on purpose: while it runs, claims hold back messages of transactions
/// newer than it (see the schema's notes on `xid < xmin`), so a
/// transaction deleting 10,000 (1.4 s, measured) held deliveries back as
/// long; 500 take tens of milliseconds.
const PRUNE_BATCH: i32 = 500;
/// Transactions one retention round runs at most (the rest waits for the
/// next round): 500,000 messages per topic.
const PRUNE_TRANSACTIONS: usize = 1_000;

/// Creates the schema's tables and functions unless they are there in
/// this version. Concurrent buses set it up one at a time.
pub(crate) fn ensure<'a>(
    pool: &'a PgPool,
    sql: &'a Statements,
) -> plexus_core::bus::BoxFuture<'a, Result<(), sqlx::Error>> {
    Box::pin(ensure_inner(pool, sql))
}

async fn ensure_inner(pool: &PgPool, sql: &Statements) -> Result<(), sqlx::Error> {
    let check = format!("SELECT max(version) FROM {}.meta", sql.schema);
    if let Ok(Some(version)) = sqlx::query_scalar::<_, Option<i32>>(&check)
        .fetch_one(pool)
        .await
        && version == schema::VERSION
    {
        return Ok(());
    }
    let mut connection = pool.acquire().await?;
    let mut tx = connection.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
        .bind(format!("plexus setup {}", sql.schema))
        .execute(&mut *tx)
        .await?;
    let tables = schema::TABLES.split(";\n");
    let functions = [
        schema::JOIN_GROUP,
        schema::CLAIM,
        schema::ACK,
        schema::ISOLATE,
        schema::NACK,
        schema::PARK,
        schema::PRUNE,
    ];
    for statement in tables.chain(functions) {
        let statement = sql.setup(statement);
        sqlx::query(&statement)
            .persistent(false)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(&format!("DELETE FROM {}.meta", sql.schema))
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!(
        "INSERT INTO {}.meta (version) VALUES ($1)",
        sql.schema
    ))
    .bind(schema::VERSION)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// One retention round, in short transactions until one deletes less
/// than a batch (or [`PRUNE_TRANSACTIONS`] ran); the messages deleted.
pub(crate) async fn prune_once(
    pool: &PgPool,
    sql: &Statements,
    config: &PostgresConfig,
) -> Result<u64, sqlx::Error> {
    let mut total = 0;
    for _ in 0..PRUNE_TRANSACTIONS {
        let deleted: i64 = sqlx::query_scalar(&sql.prune)
            .bind(millis(config.max_age))
            .bind(millis(config.private_group_expiry))
            .bind(PRUNE_BATCH)
            .fetch_one(pool)
            .await?;
        total += u64::try_from(deleted).unwrap_or(0);
        if deleted < i64::from(PRUNE_BATCH) {
            break;
        }
    }
    Ok(total)
}

/// Runs a retention round every `config.retention_interval` until
/// `cancel`.
pub(crate) async fn prune(
    pool: PgPool,
    sql: Arc<Statements>,
    config: PostgresConfig,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(config.retention_interval) => {}
            () = cancel.cancelled() => return,
        }
        let round = tokio::select! {
            round = prune_once(&pool, &sql, &config) => round,
            () = cancel.cancelled() => return,
        };
        match round {
            Ok(deleted) => tracing::debug!(deleted, "plexus retention round"),
            Err(error) => tracing::warn!(%error, "a plexus retention round failed"),
        }
    }
}

/// `duration` in whole milliseconds, at most 100 years (PostgreSQL's
/// intervals and timestamps stay in range).
pub(crate) fn millis(duration: Duration) -> i64 {
    const CENTURY_MS: i64 = 100 * 365 * 24 * 3600 * 1000;
    i64::try_from(duration.as_millis()).map_or(CENTURY_MS, |ms| ms.min(CENTURY_MS))
}
