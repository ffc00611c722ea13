//! Apache Kafka for `plexus bench bus --backend kafka`: the brokers, a
//! topic of its own per measurement (deleted after), and the raw rdkafka
//! baseline on the same workload.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use futures::future::try_join_all;
use plexus_kafka::KafkaConfig;
use rdkafka::ClientConfig;
use rdkafka::Message as _;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::message::{Header, Headers as _, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use super::cloudevent::{self, Wire};
use super::measure::{Done, Measured, count_ack, finish, histogram, now_us};
use super::{Backend, CONSUMERS};

/// The brokers: `PLEXUS_BENCH_KAFKA` (a `kafka://` URL), default the
/// local one.
pub fn url() -> String {
    std::env::var("PLEXUS_BENCH_KAFKA").unwrap_or_else(|_| plexus_kafka::DEFAULT_URL.to_owned())
}

/// The measurement's name with its run's (the temporary directory's
/// random name): the brokers keep consumer groups after their topics are
/// deleted, so a group name reused by a later run would meet the members
/// an interrupted run left behind.
fn tag(path: &Path) -> String {
    let name = |p: Option<&Path>| {
        p.and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    sanitized(&format!("{}-{}", name(path.parent()), name(Some(path))))
}

/// `text` with every character but ASCII letters and digits made `-`.
fn sanitized(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// The topic of the measurement at `path`.
pub fn topic(path: &Path) -> String {
    format!("plexus-bench-{}", tag(path))
}

/// plexus's configuration for the measurement at `path` (its topic is
/// new: see [`tag`]).
pub fn config(_path: &Path) -> anyhow::Result<KafkaConfig> {
    Ok(KafkaConfig::from_url(&url())?)
}

/// Deletes the topics of the run whose measurements live in `dir`, once
/// every measurement is over; a failure is reported, not fatal. Not one
/// by one between measurements: tansu deletes a topic slowly, and the
/// next measurement's topic could not be made meanwhile (an admin
/// timeout ended a run); and librdkafka 2.12.1 crashes when a consumer
/// still fetches a topic deleted from tansu (whose answer for an unknown
/// topic carries a leader under a zero topic id, looked up by a null
/// name), so no client of the run may be left.
pub async fn cleanup_run(dir: &Path) {
    if let Err(error) = delete_run_topics(dir).await {
        eprintln!("the run's Kafka topics were not all deleted: {error:#}");
    }
}

async fn delete_run_topics(dir: &Path) -> anyhow::Result<()> {
    let brokers = KafkaConfig::from_url(&url())?.brokers;
    let run = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!("plexus-bench-{}-", sanitized(&run));
    let admin = admin(&brokers)?;
    let (admin, names) = tokio::task::spawn_blocking(move || {
        let metadata = admin
            .inner()
            .fetch_metadata(None, Duration::from_secs(30))?;
        let names: Vec<String> = metadata
            .topics()
            .iter()
            .map(|t| t.name().to_owned())
            .filter(|name| name.starts_with(&prefix))
            .collect();
        Ok::<_, anyhow::Error>((admin, names))
    })
    .await??;
    if names.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let options = AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(60)))
        .request_timeout(Some(Duration::from_secs(90)));
    for result in admin.delete_topics(&names, &options).await? {
        result.map_err(|(topic, e)| anyhow::anyhow!("deleting topic {topic}: {e}"))?;
    }
    Ok(())
}

fn admin(brokers: &str) -> anyhow::Result<AdminClient<DefaultClientContext>> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .with_context(|| format!("connecting to Kafka at {brokers} (or set PLEXUS_BENCH_KAFKA)"))
}

/// The raw baseline: rdkafka alone, the same workload as plexus's —
/// `publishers` tasks sharing one idempotent producer (`acks=all`, the
/// same linger and partitions as plexus's defaults), each sending batches
/// of [`BATCH`] records and awaiting every delivery report; one consumer
/// (plexus's members of a group on one bus handle share one too) read by
/// [`CONSUMERS`] tasks, each storing a record's offset once it handled it,
/// committed in the background (at-least-once as far as records are
/// handled in order; raw stores offsets in whatever order its tasks finish,
/// where plexus commits only below the first unacknowledged record). With
/// [`Wire::CloudEvents`] a record carries the CloudEvents Kafka binding's
/// headers as plexus's do (`ce_*`, `content-type`; the send time is
/// `ce_time`), with [`Wire::Bare`] its send time in one header.
pub async fn raw(
    path: &Path,
    payload: usize,
    publishers: usize,
    messages: u64,
    wire: Wire,
) -> anyhow::Result<Measured> {
    let defaults = KafkaConfig::from_url(&url())?;
    let brokers = defaults.brokers.clone();
    let topic = format!("{}-raw", topic(path));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin(&brokers)?
        .create_topics(
            &[NewTopic::new(
                &topic,
                defaults.partitions,
                TopicReplication::Fixed(defaults.replication),
            )],
            &options,
        )
        .await?
    {
        result.map_err(|(topic, e)| anyhow::anyhow!("creating topic {topic}: {e}"))?;
    }
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", defaults.linger.as_millis().to_string())
        .create()?;
    let acked = Arc::new(AtomicU64::new(0));
    let done = Arc::new(Done::new(Backend::Kafka, publishers));
    // One consumer, as plexus's members of a group on one bus handle
    // share one: its records go to whichever task asks next.
    let consumer: Arc<StreamConsumer> = Arc::new(
        ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", format!("{topic}-group"))
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .create()?,
    );
    consumer.subscribe(&[&topic])?;
    let mut consumers = Vec::new();
    for _ in 0..CONSUMERS {
        let consumer = Arc::clone(&consumer);
        let (acked, done) = (Arc::clone(&acked), Arc::clone(&done));
        consumers.push(tokio::spawn(async move {
            let mut latency = histogram();
            let finished = done.notify.notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            while !done.flag.load(Ordering::Acquire) {
                let record = tokio::select! {
                    () = &mut finished => break,
                    record = consumer.recv() => record?,
                };
                let sent = record.headers().and_then(|headers| {
                    let value = |name: &str| headers.iter().find(|h| h.key == name)?.value;
                    match wire {
                        Wire::CloudEvents => std::str::from_utf8(value("ce_time")?)
                            .ok()
                            .and_then(cloudevent::parse_time_us),
                        Wire::Bare => <[u8; 8]>::try_from(value("sent-us")?)
                            .ok()
                            .map(u64::from_be_bytes),
                    }
                });
                if let Some(sent) = sent
                    && done.measuring()
                {
                    latency.saturating_record(now_us().saturating_sub(sent).max(1));
                }
                consumer.store_offset_from_message(&record)?;
                count_ack(&acked, &done, messages);
            }
            Ok::<_, anyhow::Error>(latency)
        }));
    }
    let body = vec![b'x'; payload];
    let mut senders = Vec::new();
    for count in super::baseline::shares(publishers, messages) {
        let (producer, topic, body) = (producer.clone(), topic.clone(), body.clone());
        let done = Arc::clone(&done);
        senders.push(tokio::spawn(async move {
            let mut sent = 0;
            while let Some(n) = done.next_batch(sent, count).await {
                // One send time for the whole batch, taken before any of
                // it is sent: plexus's bench stamps its batches the same
                // way (the caller builds the batch, then publishes it).
                let (stamp, time) = (now_us().to_be_bytes(), cloudevent::time(SystemTime::now()));
                let mut reports = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    let headers = match wire {
                        Wire::CloudEvents => {
                            let id = cloudevent::id();
                            let header = |headers: OwnedHeaders, key, value: &str| {
                                headers.insert(Header {
                                    key,
                                    value: Some(value.as_bytes()),
                                })
                            };
                            let headers = OwnedHeaders::new_with_capacity(6);
                            let headers =
                                header(headers, "ce_specversion", cloudevent::SPEC_VERSION);
                            let headers = header(headers, "ce_id", &id);
                            let headers = header(headers, "ce_source", cloudevent::SOURCE);
                            let headers = header(headers, "ce_type", cloudevent::TYPE);
                            let headers = header(headers, "ce_time", &time);
                            header(headers, "content-type", cloudevent::CONTENT_TYPE)
                        }
                        Wire::Bare => OwnedHeaders::new_with_capacity(1).insert(Header {
                            key: "sent-us",
                            value: Some(&stamp),
                        }),
                    };
                    let record = FutureRecord::<(), _>::to(&topic)
                        .payload(&body)
                        .headers(headers);
                    let report = producer
                        .send_result(record)
                        .map_err(|(e, _)| anyhow::anyhow!("producing: {e}"))?;
                    reports.push(report);
                }
                for report in try_join_all(reports).await? {
                    report.map_err(|(e, _)| anyhow::anyhow!("delivery: {e}"))?;
                }
                sent += n;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    let measured = finish(&done, senders, consumers, messages).await?;
    // Dropping the consumer closes it (leaving its group), blocking.
    tokio::task::spawn_blocking(move || drop((consumer, producer)))
        .await
        .context("closing the raw consumer and producer")?;
    Ok(measured)
}
