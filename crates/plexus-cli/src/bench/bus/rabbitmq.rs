//! RabbitMQ for `plexus bench bus --backend rabbitmq`: the broker, and the
//! raw lapin baseline on the same workload.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::SystemTime;

use anyhow::Context as _;
use futures::StreamExt as _;
use futures::future::try_join_all;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};

use super::cloudevent::{self, Wire};
use super::measure::{Done, MAX_IN_FLIGHT, Measured, count_ack, finish, histogram, now_us};
use super::{Backend, CONSUMERS};

/// The broker: `PLEXUS_BENCH_RABBITMQ`, default the local one.
pub fn url() -> String {
    std::env::var("PLEXUS_BENCH_RABBITMQ")
        .unwrap_or_else(|_| plexus_rabbitmq::DEFAULT_URL.to_owned())
}

/// A name of the measurement at `path` (one per measurement).
fn tag(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// plexus's configuration for the measurement at `path`: an exchange and
/// queues named after it.
pub fn config(path: &Path) -> anyhow::Result<plexus_rabbitmq::RabbitConfig> {
    let mut config = plexus_rabbitmq::RabbitConfig::from_url(&url())?;
    config.name_after(&names(path));
    Ok(config)
}

fn names(path: &Path) -> String {
    format!("plexus.bench.{}", tag(path))
}

/// Deletes what the measurement at `path` declared: the group's queue,
/// the dead-letter queue and both exchanges.
pub async fn cleanup(path: &Path) -> anyhow::Result<()> {
    let name = names(path);
    let connection = connect().await?;
    let channel = connection.create_channel().await?;
    for queue in [format!("{name}.bench.bench"), format!("{name}.dead")] {
        channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await
            .with_context(|| format!("deleting queue {queue}"))?;
    }
    for exchange in [name.clone(), format!("{name}.dead")] {
        channel
            .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
            .await
            .with_context(|| format!("deleting exchange {exchange}"))?;
    }
    let _ = connection.close(200, "done".into()).await;
    Ok(())
}

async fn connect() -> anyhow::Result<Connection> {
    let url = url();
    Connection::connect(&url, ConnectionProperties::default())
        .await
        .with_context(|| {
            format!(
                "connecting to RabbitMQ at {url} (start it with `rabbitmq-server -detached`, \
                 or set PLEXUS_BENCH_RABBITMQ)"
            )
        })
}

/// The raw baseline: lapin alone, the same workload as plexus's —
/// `publishers` tasks, each on a channel of its own with publisher
/// confirms, publishing batches of [`BATCH`] persistent messages to a
/// durable topic exchange (every message sent, then every confirm
/// awaited); [`CONSUMERS`] consumers, each on a channel of its own with a
/// prefetch of [`MAX_IN_FLIGHT`], reading the one quorum queue bound to
/// it and acknowledging every message. With [`Wire::CloudEvents`] a
/// message carries the CloudEvents AMQP binding's application properties
/// as plexus's do (`cloudEvents:*`, the send time `cloudEvents:time`) and
/// the content-type property, with [`Wire::Bare`] its send time in one
/// header.
pub async fn raw(
    path: &Path,
    payload: usize,
    publishers: usize,
    messages: u64,
    wire: Wire,
) -> anyhow::Result<Measured> {
    let name = format!("plexus.bench.raw.{}", tag(path));
    let connection = connect().await?;
    let setup = connection.create_channel().await?;
    let _ = setup
        .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
        .await;
    setup
        .exchange_declare(
            name.as_str().into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .context("declaring the raw baseline's exchange")?;
    // A quorum queue, as plexus's groups have.
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    setup
        .queue_declare(
            name.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            arguments,
        )
        .await
        .context("declaring the raw baseline's queue")?;
    setup
        .queue_bind(
            name.as_str().into(),
            name.as_str().into(),
            "bench".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let acked = Arc::new(AtomicU64::new(0));
    let done = Arc::new(Done::new(Backend::Rabbitmq, publishers));
    let mut consumers = Vec::new();
    for member in 0..CONSUMERS {
        let channel = connection.create_channel().await?;
        channel
            .basic_qos(MAX_IN_FLIGHT as u16, BasicQosOptions::default())
            .await?;
        let mut consumer = channel
            .basic_consume(
                name.as_str().into(),
                format!("bench-{member}").as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let (acked, done) = (Arc::clone(&acked), Arc::clone(&done));
        consumers.push(tokio::spawn(async move {
            let mut latency = histogram();
            let finished = done.notify.notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            if done.flag.load(std::sync::atomic::Ordering::Acquire) {
                return Ok(latency);
            }
            loop {
                let delivery = tokio::select! {
                    () = &mut finished => break,
                    next = consumer.next() => match next {
                        Some(delivery) => delivery?,
                        None => break,
                    },
                };
                let headers = delivery
                    .properties
                    .headers()
                    .as_ref()
                    .map(FieldTable::inner);
                let sent = headers.and_then(|h| {
                    match (wire, h.get("sent-us"), h.get("cloudEvents:time")) {
                        (Wire::Bare, Some(AMQPValue::LongLongInt(sent)), _) => {
                            u64::try_from(*sent).ok()
                        }
                        (Wire::CloudEvents, _, Some(AMQPValue::LongString(time))) => {
                            cloudevent::parse_time_us(&String::from_utf8_lossy(time.as_bytes()))
                        }
                        _ => None,
                    }
                });
                if let Some(sent) = sent
                    && done.measuring()
                {
                    latency.saturating_record(now_us().saturating_sub(sent).max(1));
                }
                delivery.ack(BasicAckOptions::default()).await?;
                if count_ack(&acked, &done, messages) {
                    break;
                }
            }
            let _ = channel.close(200, "done".into()).await;
            Ok::<_, anyhow::Error>(latency)
        }));
    }
    let body = vec![b'x'; payload];
    let mut senders = Vec::new();
    for count in super::baseline::shares(publishers, messages) {
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let (exchange, body) = (ShortString::from(name.as_str()), body.clone());
        let done = Arc::clone(&done);
        senders.push(tokio::spawn(async move {
            let mut sent = 0;
            while let Some(n) = done.next_batch(sent, count).await {
                // One send time for the whole batch, taken before any of
                // it is sent: plexus's bench stamps its batches the same
                // way (the caller builds the batch, then publishes it).
                let stamp = i64::try_from(now_us()).unwrap_or(i64::MAX);
                let time = cloudevent::time(SystemTime::now());
                let mut confirms = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    let mut headers = FieldTable::default();
                    let mut properties = BasicProperties::default().with_delivery_mode(2);
                    match wire {
                        Wire::CloudEvents => {
                            let id = cloudevent::id();
                            for (name, value) in [
                                ("cloudEvents:specversion", cloudevent::SPEC_VERSION),
                                ("cloudEvents:id", id.as_str()),
                                ("cloudEvents:source", cloudevent::SOURCE),
                                ("cloudEvents:type", cloudevent::TYPE),
                                ("cloudEvents:time", time.as_str()),
                            ] {
                                headers.insert(name.into(), AMQPValue::LongString(value.into()));
                            }
                            properties =
                                properties.with_content_type(cloudevent::CONTENT_TYPE.into());
                        }
                        Wire::Bare => {
                            headers.insert("sent-us".into(), AMQPValue::LongLongInt(stamp));
                        }
                    }
                    let properties = properties.with_headers(headers);
                    confirms.push(
                        channel
                            .basic_publish(
                                exchange.clone(),
                                "bench".into(),
                                BasicPublishOptions::default(),
                                &body,
                                properties,
                            )
                            .await?,
                    );
                }
                for confirmation in try_join_all(confirms).await? {
                    anyhow::ensure!(confirmation.is_ack(), "the broker refused a message");
                }
                sent += n;
            }
            let _ = channel.close(200, "done".into()).await;
            Ok::<_, anyhow::Error>(())
        }));
    }
    let measured = finish(&done, senders, consumers, messages).await?;
    let _ = setup
        .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
        .await;
    let _ = setup
        .exchange_delete(name.as_str().into(), ExchangeDeleteOptions::default())
        .await;
    let _ = connection.close(200, "done".into()).await;
    Ok(measured)
}
