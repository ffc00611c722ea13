//! The raw baselines of `plexus bench bus` (see the parent module).

use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::sync::Arc;

use anyhow::Context as _;
use plexus_core::Message;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tokio::time::Instant;

use super::cloudevent::Wire;
use super::measure::{Measured, batch, histogram, since_us};
use super::{BATCH, Backend, Workload};

/// The baselines of `backend`, the floors' first: for a broker the
/// same CloudEvents on the wire, then the bare payloads (see
/// [`Wire`]); for the in-memory and SQLite buses, which send nothing
/// over a wire, one.
pub fn wires(backend: Backend) -> &'static [Wire] {
    match backend {
        Backend::Memory | Backend::Sqlite => &[Wire::Bare],
        _ => &[Wire::CloudEvents, Wire::Bare],
    }
}

/// The baseline of `backend` on the same messages, sent as `wire` says.
pub async fn run(workload: Workload, path: PathBuf, wire: Wire) -> anyhow::Result<Measured> {
    let path = path.as_path();
    let (payload, publishers, messages) =
        (workload.payload, workload.publishers, workload.messages);
    match workload.backend {
        Backend::Memory => channel(payload, publishers, messages, workload.keys).await,
        Backend::Sqlite => inserts(path, payload, publishers, messages, workload.keys).await,
        Backend::Nats => super::nats::raw(path, payload, publishers, messages, wire).await,
        Backend::Rabbitmq => super::rabbitmq::raw(path, payload, publishers, messages, wire).await,
        #[cfg(feature = "kafka")]
        Backend::Kafka => super::kafka::raw(path, payload, publishers, messages, wire).await,
        Backend::Postgres => super::postgres::raw(path, payload, publishers, messages, wire).await,
    }
}

pub fn shares(publishers: usize, messages: u64) -> Vec<u64> {
    let share = messages / publishers as u64;
    (0..publishers as u64)
        .map(|p| {
            if p + 1 == publishers as u64 {
                messages - share * p
            } else {
                share
            }
        })
        .collect()
}

/// Batches through a bounded tokio channel to one consumer.
async fn channel(
    payload: usize,
    publishers: usize,
    messages: u64,
    keys: u64,
) -> anyhow::Result<Measured> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Message>>(1024);
    let consumer = tokio::spawn(async move {
        let mut latency = histogram();
        let mut received = 0u64;
        while let Some(batch) = rx.recv().await {
            for message in &batch {
                latency.saturating_record(since_us(message.time()));
            }
            received += batch.len() as u64;
        }
        (received, latency)
    });
    let started = Instant::now();
    let mut senders = Vec::new();
    for (p, count) in shares(publishers, messages).into_iter().enumerate() {
        let tx = tx.clone();
        senders.push(tokio::spawn(async move {
            let mut sent = 0;
            while sent < count {
                let n = (count - sent).min(BATCH as u64);
                tx.send(batch(n as usize, payload, p as u64 * count + sent, keys))
                    .await
                    .map_err(|_| anyhow::anyhow!("the baseline consumer stopped"))?;
                sent += n;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    drop(tx);
    for sender in senders {
        sender.await??;
    }
    let published = started.elapsed();
    let (received, latency) = consumer.await?;
    let elapsed = started.elapsed();
    anyhow::ensure!(
        received == messages,
        "the channel delivered {received} of {messages}"
    );
    Ok(Measured {
        throughput: messages as f64 / elapsed.as_secs_f64(),
        publish_throughput: messages as f64 / published.as_secs_f64(),
        p50_us: latency.value_at_quantile(0.50) as f64,
        p99_us: latency.value_at_quantile(0.99) as f64,
        warmup_ms: 0.0,
        cpu_us_per_msg: None,
    })
}

/// Raw multi-row INSERTs, one transaction per batch, WAL and
/// `synchronous=FULL`, one connection (SQLite has one writer).
async fn inserts(
    path: &Path,
    payload: usize,
    publishers: usize,
    messages: u64,
    keys: u64,
) -> anyhow::Result<Measured> {
    let file = path.with_extension("raw.db");
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", file.display()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .with_context(|| format!("opening the raw SQLite baseline at {}", file.display()))?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS messages (seq INTEGER PRIMARY KEY, topic TEXT NOT NULL, \
         id TEXT NOT NULL, type TEXT NOT NULL, source TEXT NOT NULL, key TEXT, time TEXT NOT NULL, \
         payload BLOB NOT NULL)",
    )
    .execute(&pool)
    .await?;
    let pool = Arc::new(pool);
    let sql = {
        let row = "(?, ?, ?, ?, ?, ?, ?)";
        format!(
            "INSERT INTO messages (topic, id, type, source, key, time, payload) VALUES {}",
            vec![row; BATCH].join(", ")
        )
    };
    let started = Instant::now();
    let mut senders = Vec::new();
    for (p, count) in shares(publishers, messages).into_iter().enumerate() {
        let (pool, sql) = (Arc::clone(&pool), sql.clone());
        senders.push(tokio::spawn(async move {
            let mut latency = histogram();
            let mut sent = 0;
            while sent < count {
                let n = (count - sent).min(BATCH as u64) as usize;
                let messages = batch(n, payload, p as u64 * count + sent, keys);
                let statement = if n == BATCH {
                    sql.clone()
                } else {
                    format!(
                        "INSERT INTO messages (topic, id, type, source, key, time, payload) VALUES {}",
                        vec!["(?, ?, ?, ?, ?, ?, ?)"; n].join(", ")
                    )
                };
                let mut query = sqlx::query(&statement);
                for m in &messages {
                    query = query
                        .bind("bench")
                        .bind(m.id().to_owned())
                        .bind(m.ty().to_owned())
                        .bind(m.source().to_owned())
                        .bind(m.key().map(str::to_owned))
                        .bind(plexus_core::message::format_time(m.time()))
                        .bind(m.payload().to_vec());
                }
                let mut tx = pool.begin().await?;
                query.execute(&mut *tx).await?;
                tx.commit().await?;
                for m in &messages {
                    latency.saturating_record(since_us(m.time()));
                }
                sent += n as u64;
            }
            Ok::<_, anyhow::Error>(latency)
        }));
    }
    let mut latency = histogram();
    for sender in senders {
        let part = sender.await??;
        latency.add(&part).expect("histograms with the same bounds");
    }
    let elapsed = started.elapsed();
    pool.close().await;
    Ok(Measured {
        throughput: messages as f64 / elapsed.as_secs_f64(),
        publish_throughput: messages as f64 / elapsed.as_secs_f64(),
        p50_us: latency.value_at_quantile(0.50) as f64,
        p99_us: latency.value_at_quantile(0.99) as f64,
        warmup_ms: 0.0,
        cpu_us_per_msg: None,
    })
}
