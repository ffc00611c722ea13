//! PostgreSQL for `plexus bench bus --backend postgres`: the server, a
//! schema of its own per measurement (dropped before and after), and the
//! raw sqlx baseline on the same workload.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use anyhow::Context as _;
use plexus_postgres::PostgresConfig;
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use time::OffsetDateTime;

use super::cloudevent::{self, Wire};
use super::measure::{Done, MAX_IN_FLIGHT, Measured, count_ack, finish, histogram, now_us};
use super::{Backend, CONSUMERS};

/// The server: `PLEXUS_BENCH_POSTGRES`, default the local one.
pub fn url() -> String {
    std::env::var("PLEXUS_BENCH_POSTGRES")
        .unwrap_or_else(|_| plexus_postgres::DEFAULT_URL.to_owned())
}

/// The schema of the measurement at `path` (one per measurement).
fn schema(path: &Path) -> String {
    let tag: String = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("plexus_bench_{tag}")
}

async fn pool(connections: u32) -> anyhow::Result<PgPool> {
    pool_with(PgPoolOptions::new().max_connections(connections)).await
}

async fn pool_with(options: PgPoolOptions) -> anyhow::Result<PgPool> {
    let url = url();
    options.connect(&url).await.with_context(|| {
        format!(
            "connecting to PostgreSQL at {url} (start it with `pg_ctlcluster \
                 --skip-systemctl-redirect $(ls /etc/postgresql) main start`, or set \
                 PLEXUS_BENCH_POSTGRES)"
        )
    })
}

async fn drop_schema(name: &str) -> anyhow::Result<()> {
    let pool = pool(1).await?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
        .execute(&pool)
        .await
        .with_context(|| format!("dropping schema {name}"))?;
    pool.close().await;
    Ok(())
}

/// plexus's configuration for the measurement at `path`, its schema
/// dropped first (left over from an interrupted run).
pub async fn config(path: &Path) -> anyhow::Result<PostgresConfig> {
    let mut config = PostgresConfig::new(url());
    config.schema = schema(path);
    drop_schema(&config.schema).await?;
    Ok(config)
}

/// Drops the schema of the measurement at `path`.
pub async fn cleanup(path: &Path) -> anyhow::Result<()> {
    drop_schema(&schema(path)).await
}

/// The raw baseline: sqlx alone, a job queue as an application would
/// write it, with the durability plexus's bus has — `publishers` tasks
/// each inserting batches of [`BATCH`] rows (one multi-row `INSERT`
/// through `unnest`, committed durably, then `pg_notify`); [`CONSUMERS`]
/// consumers each leasing up to [`MAX_IN_FLIGHT`] rows at a time with
/// `FOR UPDATE SKIP LOCKED` for an ack deadline (a claim commits without
/// waiting for the disk, as plexus's claims do: lost in a crash, a lease
/// only comes back) and deleting them once handled (durably), waking on
/// the notification (or every 500 ms, as plexus's polling fallback).
/// Eight connections as plexus's bus, plus one per consumer for claims.
/// With [`Wire::CloudEvents`] a row also holds the attributes plexus's
/// rows hold (id, source, type, time — the send time — and content type,
/// in columns of their own), with [`Wire::Bare`] only its send time.
pub async fn raw(
    path: &Path,
    payload: usize,
    publishers: usize,
    messages: u64,
    wire: Wire,
) -> anyhow::Result<Measured> {
    let schema = format!("{}_raw", schema(path));
    drop_schema(&schema).await?;
    let pool = pool(8).await?;
    for statement in [
        format!("CREATE SCHEMA {schema}"),
        format!(
            "CREATE TABLE {schema}.jobs (seq bigserial PRIMARY KEY, {columns}, \
             payload bytea NOT NULL, lease_until timestamptz NOT NULL DEFAULT '-infinity')",
            columns = match wire {
                Wire::CloudEvents =>
                    "id text NOT NULL, source text NOT NULL, type text NOT NULL, \
                                      \"time\" timestamptz NOT NULL, datacontenttype text",
                Wire::Bare => "sent_us bigint NOT NULL",
            }
        ),
    ] {
        sqlx::query(&statement).execute(&pool).await?;
    }
    let channel = schema.clone();
    let acked = Arc::new(AtomicU64::new(0));
    let done = Arc::new(Done::new(Backend::Postgres, publishers));
    let claim = Arc::new(format!(
        "UPDATE {schema}.jobs SET lease_until = now() + interval '30 seconds' WHERE seq IN \
         (SELECT seq FROM {schema}.jobs WHERE lease_until < now() ORDER BY seq LIMIT $1 \
         FOR UPDATE SKIP LOCKED) RETURNING seq, {sent}",
        sent = match wire {
            Wire::CloudEvents => "(extract(epoch FROM \"time\") * 1000000)::bigint",
            Wire::Bare => "sent_us",
        }
    ));
    let delete = Arc::new(format!("DELETE FROM {schema}.jobs WHERE seq = ANY($1)"));
    let claims = pool_with(
        PgPoolOptions::new()
            .max_connections(CONSUMERS as u32)
            .after_connect(|connection, _| {
                Box::pin(async move {
                    sqlx::Executor::execute(connection, "SET synchronous_commit = off").await?;
                    Ok(())
                })
            }),
    )
    .await?;
    let mut consumers = Vec::new();
    for _ in 0..CONSUMERS {
        let mut listener = PgListener::connect(&url()).await?;
        listener.listen(&channel).await?;
        let (pool, claims, claim, delete) = (
            pool.clone(),
            claims.clone(),
            Arc::clone(&claim),
            Arc::clone(&delete),
        );
        let (acked, done) = (Arc::clone(&acked), Arc::clone(&done));
        consumers.push(tokio::spawn(async move {
            let mut latency = histogram();
            let finished = done.notify.notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            while !done.flag.load(std::sync::atomic::Ordering::Acquire) {
                let rows: Vec<(i64, i64)> = sqlx::query_as(&claim)
                    .bind(MAX_IN_FLIGHT as i64)
                    .fetch_all(&claims)
                    .await?;
                if rows.is_empty() {
                    tokio::select! {
                        () = &mut finished => break,
                        woken = listener.recv() => { woken?; }
                        () = tokio::time::sleep(Duration::from_millis(500)) => {}
                    }
                    continue;
                }
                let now = now_us();
                let mut seqs = Vec::with_capacity(rows.len());
                let measuring = done.measuring();
                for (seq, sent) in rows {
                    if measuring {
                        latency.saturating_record(now.saturating_sub(sent as u64).max(1));
                    }
                    seqs.push(seq);
                }
                sqlx::query(&delete).bind(&seqs).execute(&pool).await?;
                for _ in 0..seqs.len() {
                    count_ack(&acked, &done, messages);
                }
            }
            Ok::<_, anyhow::Error>(latency)
        }));
    }
    let insert = Arc::new(match wire {
        Wire::CloudEvents => format!(
            "INSERT INTO {schema}.jobs (\"time\", payload, id, source, type, datacontenttype) \
             SELECT * FROM unnest($1::timestamptz[], $2::bytea[], $3::text[], $4::text[], \
             $5::text[], $6::text[])"
        ),
        Wire::Bare => format!(
            "INSERT INTO {schema}.jobs (sent_us, payload) SELECT * FROM unnest($1::bigint[], $2::bytea[])"
        ),
    });
    let body = vec![b'x'; payload];
    let mut senders = Vec::new();
    for count in super::baseline::shares(publishers, messages) {
        let (pool, insert, body, channel) = (
            pool.clone(),
            Arc::clone(&insert),
            body.clone(),
            channel.clone(),
        );
        let done = Arc::clone(&done);
        senders.push(tokio::spawn(async move {
            let mut sent = 0;
            while let Some(n) = done.next_batch(sent, count).await {
                let n = n as usize;
                let (now, time) = (now_us() as i64, OffsetDateTime::now_utc());
                let query = match wire {
                    Wire::CloudEvents => sqlx::query(&insert)
                        .bind(vec![time; n])
                        .bind(vec![body.clone(); n])
                        .bind((0..n).map(|_| cloudevent::id()).collect::<Vec<_>>())
                        .bind(vec![cloudevent::SOURCE; n])
                        .bind(vec![cloudevent::TYPE; n])
                        .bind(vec![cloudevent::CONTENT_TYPE; n]),
                    Wire::Bare => sqlx::query(&insert)
                        .bind(vec![now; n])
                        .bind(vec![body.clone(); n]),
                };
                query.execute(&pool).await?;
                sqlx::query("SELECT pg_notify($1, 'bench')")
                    .bind(&channel)
                    .execute(&pool)
                    .await?;
                sent += n as u64;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    let measured = finish(&done, senders, consumers, messages).await?;
    claims.close().await;
    pool.close().await;
    drop_schema(&schema).await?;
    Ok(measured)
}
