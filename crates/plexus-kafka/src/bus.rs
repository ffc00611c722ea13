//! [`KafkaBus`]: the publisher and subscriber on Kafka brokers.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use plexus_core::Message;
use plexus_core::bus::{
    BoxFuture, BusError, Features, Publisher, SubscribeOptions, Subscriber, Subscription,
};
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use tokio_util::sync::CancellationToken;

use crate::binding;
use crate::config::KafkaConfig;
use crate::consumer::{self, Consumers};
use crate::topic;
use crate::topics::Topics;

/// How to start a broker for the tests and demos, named in connection
/// errors.
const HINT: &str = "check that a Kafka broker runs there (for a local tansu: \
                    bash -c 'source .ci/tansu.sh && ensure_tansu')";

/// A bus on Kafka brokers: a plexus topic is the Kafka topic of that
/// name (made with [`KafkaConfig::partitions`] partitions on first use);
/// a consumer group is a Kafka consumer group per topic. Clones share the
/// connections; closing any closes all.
///
/// Publishing uses an idempotent producer (`enable.idempotence`,
/// `acks=all`): a publish returns once every record is acknowledged by
/// the brokers. A keyed message goes to its key's partition (Kafka's
/// murmur2 partitioner, as the Java client); the messages without a key
/// of one publish go to one partition, those of the next publish to the
/// next partition.
///
/// Consuming never commits ahead of processing: a partition's committed
/// offset is its lowest unacknowledged message, and what was acknowledged
/// past it (and each unacknowledged message's attempts) rides in the
/// commit's metadata, so that a rebalance, a restart or a crash delivers
/// again only what was not acknowledged. The messages of one key reach
/// the group one at a time in order; different keys go out in parallel.
/// Nacks and ack deadlines are kept by the consumer (Kafka has neither):
/// it holds the message and hands it out again when due.
///
/// ```no_run
/// # async fn run() -> Result<(), plexus_core::bus::BusError> {
/// use plexus_kafka::KafkaBus;
/// let bus = KafkaBus::connect("kafka://127.0.0.1:9092").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct KafkaBus {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) config: KafkaConfig,
    /// Replaced when librdkafka reports a fatal error (an idempotent
    /// producer that lost its sequence, say after a broker lost state).
    producer: Mutex<FutureProducer>,
    pub(crate) admin: AdminClient<DefaultClientContext>,
    pub(crate) topics: Topics,
    pub(crate) consumers: Consumers,
    /// The next partition of a publish's messages without a key.
    round_robin: AtomicUsize,
    /// The backend's name in errors (names the brokers).
    pub(crate) name: String,
    pub(crate) closed: CancellationToken,
}

impl Shared {
    pub(crate) fn error(&self, doing: &str, error: impl std::fmt::Display) -> BusError {
        BusError::backend(&self.name, format!("{doing} failed: {error}; {HINT}"))
    }

    fn producer(&self) -> FutureProducer {
        self.producer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces `failed` with a new producer when librdkafka declared it
    /// unusable (a fatal error); later publishes use the new one.
    fn renew_if_fatal(&self, failed: &FutureProducer) {
        let Some((code, reason)) = failed.client().fatal_error() else {
            return;
        };
        let mut current = self.producer.lock().unwrap_or_else(|e| e.into_inner());
        if !std::ptr::eq(current.client().native_ptr(), failed.client().native_ptr()) {
            return;
        }
        match producer(&self.config) {
            Ok(fresh) => {
                tracing::warn!(?code, %reason, "the producer failed fatally; publishing with a new one");
                *current = fresh;
            }
            Err(error) => {
                tracing::error!(%error, "making a new producer after a fatal error failed")
            }
        }
    }

    fn closed_error(&self, what: &'static str) -> BusError {
        BusError::Closed {
            backend: self.name.clone(),
            what,
        }
    }
}

impl KafkaBus {
    /// Connects to the brokers at `url` (`kafka://host:port[,…]`) with
    /// the defaults of [`KafkaConfig`].
    pub async fn connect(url: &str) -> Result<Self, BusError> {
        Self::with_config(KafkaConfig::from_url(url)?).await
    }

    /// Connects with `config`: makes the producer and checks that the
    /// brokers answer.
    pub async fn with_config(config: KafkaConfig) -> Result<Self, BusError> {
        let name = format!("Kafka at {}", config.brokers);
        let failed = |doing: &str, e: &dyn std::fmt::Display| {
            BusError::backend(&name, format!("{doing} failed: {e}; {HINT}"))
        };
        let producer = producer(&config).map_err(|e| failed("making the producer", &e))?;
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &config.brokers)
            .set("allow.auto.create.topics", "false")
            .create()
            .map_err(|e| failed("making the admin client", &e))?;
        let shared = Arc::new(Shared {
            config,
            producer: Mutex::new(producer),
            admin,
            topics: Topics::default(),
            consumers: Consumers::new(),
            round_robin: AtomicUsize::new(0),
            name: name.clone(),
            closed: CancellationToken::new(),
        });
        let probe = Arc::clone(&shared);
        let reached = tokio::task::spawn_blocking(move || {
            probe
                .producer()
                .client()
                .fetch_metadata(None, probe.config.request_timeout)
                .map(|_| ())
        })
        .await;
        match reached {
            Ok(Ok(())) => Ok(KafkaBus { shared }),
            Ok(Err(e)) => Err(failed("connecting", &e)),
            Err(e) => Err(failed("connecting", &e)),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &KafkaConfig {
        &self.shared.config
    }

    fn features(&self) -> Features {
        Features {
            persistent: true,
            per_key_order: true,
            consumer_groups: true,
            replay: true,
            nack_delay: true,
            max_message_bytes: self.shared.config.max_message_bytes,
            exclusive_groups: false,
        }
    }

    async fn publish_batch(&self, topic: &str, batch: Vec<Message>) -> Result<(), BusError> {
        let shared = &self.shared;
        if shared.closed.is_cancelled() {
            return Err(shared.closed_error("publisher"));
        }
        topic::check(topic)?;
        if batch.is_empty() {
            return Ok(());
        }
        // Every message is checked before any is sent.
        let mut encoded = Vec::with_capacity(batch.len());
        for message in &batch {
            let wire = binding::encode(message).map_err(|reason| BusError::InvalidOption {
                option: "headers",
                reason,
            })?;
            if wire.size > shared.config.max_message_bytes {
                return Err(BusError::TooLarge {
                    backend: shared.name.clone(),
                    topic: topic.to_owned(),
                    id: message.id().to_owned(),
                    size: wire.size,
                    limit: shared.config.max_message_bytes,
                });
            }
            encoded.push(wire);
        }
        let partitions = shared.topics.ensure(shared, topic).await?;
        let doing = || format!("publishing to `{topic}`");
        let producer = shared.producer();
        let published = self
            .send_all(&producer, topic, &batch, encoded, partitions, &doing)
            .await;
        if published.is_err() {
            shared.renew_if_fatal(&producer);
        }
        published
    }

    /// Sends every record, then waits for every acknowledgement.
    async fn send_all(
        &self,
        producer: &FutureProducer,
        topic: &str,
        batch: &[Message],
        encoded: Vec<binding::Encoded>,
        partitions: i32,
        doing: &impl Fn() -> String,
    ) -> Result<(), BusError> {
        let shared = &self.shared;
        let mut pending: VecDeque<DeliveryFuture> = VecDeque::with_capacity(batch.len());
        // The batch's messages without a key go to one partition, the
        // next batch's to the next: one record batch per publish, as
        // librdkafka's sticky partitioner does, instead of a sliver for
        // every partition.
        let keyless =
            shared.round_robin.fetch_add(1, Ordering::Relaxed) % partitions.max(1) as usize;
        for (message, wire) in batch.iter().zip(encoded) {
            let mut record = FutureRecord::<str, [u8]>::to(topic)
                .payload(&message.payload()[..])
                .headers(wire.headers);
            record = match message.key() {
                Some(key) => record.key(key),
                None => record.partition(keyless as i32),
            };
            loop {
                match producer.send_result(record) {
                    Ok(delivery) => {
                        pending.push_back(delivery);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        // The producer's queue is full: wait for the
                        // oldest record of this batch, then try again.
                        record = back;
                        match pending.pop_front() {
                            Some(oldest) => delivered(shared, oldest, doing).await?,
                            None => tokio::task::yield_now().await,
                        }
                    }
                    Err((error, _)) => return Err(shared.error(&doing(), error)),
                }
            }
        }
        for delivery in pending {
            delivered(shared, delivery, doing).await?;
        }
        Ok(())
    }

    async fn close_bus(&self) -> Result<(), BusError> {
        let shared = &self.shared;
        if shared.closed.is_cancelled() {
            return Ok(());
        }
        shared.closed.cancel();
        let flushing = Arc::clone(shared);
        let flushed = tokio::task::spawn_blocking(move || {
            flushing.producer().flush(flushing.config.publish_timeout)
        })
        .await;
        let stopped = shared
            .consumers
            .stopped(shared.config.request_timeout)
            .await;
        match flushed {
            Ok(Ok(())) if stopped => Ok(()),
            Ok(Ok(())) => Err(shared.error(
                "closing",
                "consumers did not commit and leave their groups in time",
            )),
            Ok(Err(e)) => Err(shared.error("flushing the producer", e)),
            Err(e) => Err(shared.error("flushing the producer", e)),
        }
    }
}

/// The idempotent producer (`acks=all`) of `config`.
fn producer(config: &KafkaConfig) -> rdkafka::error::KafkaResult<FutureProducer> {
    ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("partitioner", "murmur2_random")
        .set("allow.auto.create.topics", "false")
        .set("linger.ms", config.linger.as_millis().to_string())
        .set(
            "message.timeout.ms",
            config.publish_timeout.as_millis().to_string(),
        )
        .set(
            "message.max.bytes",
            (config.max_message_bytes + 64 * 1024).to_string(),
        )
        .set("queue.buffering.max.kbytes", "65536")
        .create()
}

/// Waits for one record's acknowledgement.
async fn delivered(
    shared: &Shared,
    delivery: DeliveryFuture,
    doing: &impl Fn() -> String,
) -> Result<(), BusError> {
    match delivery.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((error, _))) => Err(shared.error(&doing(), error)),
        Err(_) => Err(shared.error(&doing(), "the producer was dropped")),
    }
}

impl Publisher for KafkaBus {
    /// Sends the batch and returns once the brokers acknowledged every
    /// record (`acks=all`). A batch is not atomic: after an error some of
    /// it may be stored; the idempotent producer never stores a record
    /// twice on its own retries, but publishing the batch again does.
    fn publish<'a>(
        &'a self,
        topic: &'a str,
        batch: Vec<Message>,
    ) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(self.publish_batch(topic, batch))
    }

    fn close(&self) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(self.close_bus())
    }

    fn features(&self) -> Features {
        KafkaBus::features(self)
    }
}

impl Subscriber for KafkaBus {
    fn subscribe<'a>(
        &'a self,
        topic: &'a str,
        options: SubscribeOptions,
    ) -> BoxFuture<'a, Result<Subscription, BusError>> {
        Box::pin(async move {
            if self.shared.closed.is_cancelled() {
                return Err(self.shared.closed_error("subscriber"));
            }
            options.check(&self.shared.name, &KafkaBus::features(self))?;
            consumer::subscribe(&self.shared, topic, options).await
        })
    }

    fn close(&self) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(self.close_bus())
    }

    fn features(&self) -> Features {
        KafkaBus::features(self)
    }
}
