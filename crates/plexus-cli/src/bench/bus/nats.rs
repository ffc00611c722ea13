//! NATS JetStream for `plexus bench bus --backend nats`: the server, a
//! fresh stream per measurement (deleted before and after), and the raw
//! async-nats baseline on the same workload.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use anyhow::Context as _;
use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::{self, AckKind, stream};
use bytes::Bytes;
use futures::StreamExt as _;
use futures::future::try_join_all;
use futures::stream::FuturesUnordered;
use plexus_nats::NatsConfig;

use super::cloudevent::{self, Wire};
use super::measure::MAX_IN_FLIGHT;
use super::measure::{Done, Measured, count_ack, finish, histogram, now_us};
use super::{Backend, CONSUMERS};

/// The server: `PLEXUS_BENCH_NATS`, default the local one.
pub fn url() -> String {
    std::env::var("PLEXUS_BENCH_NATS").unwrap_or_else(|_| plexus_nats::DEFAULT_URL.to_owned())
}

/// The stream of the measurement at `path` (one per measurement).
fn stream_name(path: &Path) -> String {
    let tag: String = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("PLEXUS_BENCH_{tag}")
}

/// plexus's configuration for the measurement at `path`, its stream
/// deleted first (left over from an interrupted run).
pub async fn config(path: &Path) -> anyhow::Result<NatsConfig> {
    let mut config = NatsConfig::new(url());
    config.stream = stream_name(path);
    config.subject_prefix = config.stream.to_lowercase();
    delete_stream(&config.stream).await?;
    Ok(config)
}

/// Deletes the measurement's stream, if there is one.
pub async fn delete_stream(name: &str) -> anyhow::Result<()> {
    let client = connect().await?;
    let _ = jetstream::new(client).delete_stream(name).await;
    Ok(())
}

/// Deletes the stream of the measurement at `path`.
pub async fn cleanup(path: &Path) -> anyhow::Result<()> {
    delete_stream(&stream_name(path)).await
}

async fn connect() -> anyhow::Result<async_nats::Client> {
    let url = url();
    async_nats::connect(url.as_str()).await.with_context(|| {
        format!(
            "connecting to NATS at {url} (start nats-server with -js, or set PLEXUS_BENCH_NATS)"
        )
    })
}

/// The raw baseline: async-nats alone, the same workload as plexus's —
/// `publishers` tasks each publishing batches of [`BATCH`] (every message
/// sent, then every publish acknowledgement awaited) to a file-backed
/// stream, [`CONSUMERS`] members reading one durable consumer with
/// async-nats's own pull stream (batches of [`MAX_IN_FLIGHT`]) and at most
/// that many unanswered each, every ack confirmed by the server. With
/// [`Wire::CloudEvents`] a message carries the CloudEvents NATS binding's
/// headers as plexus's do (`ce-*`, `content-type`; the send time is
/// `ce-time`), with [`Wire::Bare`] its send time in one header.
pub async fn raw(
    path: &Path,
    payload: usize,
    publishers: usize,
    messages: u64,
    wire: Wire,
) -> anyhow::Result<Measured> {
    let name = format!("{}_RAW", stream_name(path));
    delete_stream(&name).await?;
    let client = connect().await?;
    let context = jetstream::new(client.clone());
    let subject = format!("{}.bench", name.to_lowercase());
    let stream = context
        .create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![subject.clone()],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .context("creating the raw baseline's stream")?;
    let consumer: jetstream::consumer::PullConsumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("bench".to_owned()),
            ack_policy: AckPolicy::Explicit,
            deliver_policy: DeliverPolicy::New,
            max_ack_pending: 10_000,
            ..Default::default()
        })
        .await
        .context("creating the raw baseline's consumer")?;
    let acked = Arc::new(AtomicU64::new(0));
    let done = Arc::new(Done::new(Backend::Nats, publishers));
    let mut consumers = Vec::new();
    for _ in 0..CONSUMERS {
        let (consumer, client) = (consumer.clone(), client.clone());
        let (acked, done) = (Arc::clone(&acked), Arc::clone(&done));
        consumers.push(tokio::spawn(async move {
            let mut latency = histogram();
            let mut acks = FuturesUnordered::new();
            let mut pulled = consumer
                .stream()
                .max_messages_per_batch(MAX_IN_FLIGHT)
                .messages()
                .await?;
            // Armed before the flag is read (as plexus's consumers do).
            let finished = done.notify.notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            // Acks complete while messages come; no more than
            // MAX_IN_FLIGHT unanswered.
            while !done.flag.load(Ordering::Acquire) {
                let message = tokio::select! {
                    () = &mut finished => break,
                    Some(result) = acks.next(), if !acks.is_empty() => {
                        result?;
                        continue;
                    }
                    message = pulled.next(), if acks.len() < MAX_IN_FLIGHT => match message {
                        Some(message) => message.map_err(|e| anyhow::anyhow!("pulling: {e}"))?,
                        None => break,
                    },
                };
                if let Some(sent) = message.headers.as_ref().and_then(|h| match wire {
                    Wire::CloudEvents => cloudevent::parse_time_us(h.get("ce-time")?.as_str()),
                    Wire::Bare => h.get("sent-us")?.as_str().parse::<u64>().ok(),
                }) && done.measuring()
                {
                    latency.saturating_record(now_us().saturating_sub(sent).max(1));
                }
                let reply = message
                    .reply
                    .clone()
                    .context("a message without a reply subject")?;
                let (client, acked, done) = (client.clone(), Arc::clone(&acked), Arc::clone(&done));
                acks.push(async move {
                    client.request(reply, Bytes::from(AckKind::Ack)).await?;
                    count_ack(&acked, &done, messages);
                    Ok::<_, anyhow::Error>(())
                });
            }
            while let Some(result) = acks.next().await {
                result?;
            }
            Ok::<_, anyhow::Error>(latency)
        }));
    }
    let body = Bytes::from(vec![b'x'; payload]);
    let mut senders = Vec::new();
    for count in super::baseline::shares(publishers, messages) {
        let (context, subject, body) = (context.clone(), subject.clone(), body.clone());
        let done = Arc::clone(&done);
        senders.push(tokio::spawn(async move {
            let mut sent = 0;
            while let Some(n) = done.next_batch(sent, count).await {
                // One send time for the whole batch, taken before any of
                // it is sent: plexus's bench stamps its batches the same
                // way (the caller builds the batch, then publishes it).
                let stamp = match wire {
                    Wire::CloudEvents => cloudevent::time(SystemTime::now()),
                    Wire::Bare => now_us().to_string(),
                };
                let mut pending = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    let mut headers = HeaderMap::new();
                    match wire {
                        Wire::CloudEvents => {
                            headers.insert("ce-specversion", cloudevent::SPEC_VERSION);
                            headers.insert("ce-id", cloudevent::id());
                            headers.insert("ce-source", cloudevent::SOURCE);
                            headers.insert("ce-type", cloudevent::TYPE);
                            headers.insert("ce-time", stamp.as_str());
                            headers.insert("content-type", cloudevent::CONTENT_TYPE);
                        }
                        Wire::Bare => headers.insert("sent-us", stamp.as_str()),
                    }
                    pending.push(
                        context
                            .publish_with_headers(subject.clone(), headers, body.clone())
                            .await?
                            .into_future(),
                    );
                }
                try_join_all(pending).await?;
                sent += n;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    let measured = finish(&done, senders, consumers, messages).await?;
    let _ = context.delete_stream(&name).await;
    Ok(measured)
}
