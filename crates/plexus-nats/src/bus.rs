//! [`NatsBus`]: the publisher and subscriber on JetStream.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use async_nats::jetstream::{self, stream};
use futures::future::try_join_all;
use plexus_core::Message;
use plexus_core::bus::{
    BoxFuture, BusError, Features, Publisher, SubscribeOptions, Subscriber, Subscription,
};
use plexus_core::message::format_time;
use tokio_util::sync::CancellationToken;

use crate::binding;
use crate::config::NatsConfig;
use crate::subject::subject;
use crate::subscription;

/// A bus on a NATS JetStream server: every topic is a subject of one
/// stream (`NatsConfig::stream`, created if missing, file storage);
/// every consumer group is a durable pull consumer on its topic's
/// subject that the group's members pull from together. Clones share the
/// connection; closing any closes all.
///
/// ```no_run
/// # async fn run() -> Result<(), plexus_core::bus::BusError> {
/// use plexus_nats::NatsBus;
/// let bus = NatsBus::connect("nats://127.0.0.1:4222").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct NatsBus {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) config: NatsConfig,
    pub(crate) client: async_nats::Client,
    pub(crate) stream: stream::Stream,
    /// The backend's name in errors (names the server).
    pub(crate) name: String,
    /// The server's largest message (headers and body), bytes.
    pub(crate) max_payload: usize,
    /// Cancelled when the bus closes: what a waiting subscription
    /// selects on.
    pub(crate) closed: CancellationToken,
    /// Set when the bus closes, before `closed` is cancelled: what every
    /// publish, delivery and answer checks (an atomic load, where the
    /// token's check takes a lock).
    pub(crate) closing: AtomicBool,
}

impl Shared {
    /// Whether the bus was closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    pub(crate) fn error(&self, doing: &str, error: impl std::fmt::Display) -> BusError {
        BusError::backend(
            &self.name,
            format!(
                "{doing} failed: {error}; check that the NATS server runs with JetStream (-js)"
            ),
        )
    }

    pub(crate) fn closed_error(&self, what: &'static str) -> BusError {
        BusError::Closed {
            backend: self.name.clone(),
            what,
        }
    }
}

impl NatsBus {
    /// Connects to the server at `url` (`nats://host:port[?stream=NAME]`)
    /// with the defaults of [`NatsConfig`].
    pub async fn connect(url: &str) -> Result<Self, BusError> {
        Self::with_config(NatsConfig::from_url(url)?).await
    }

    /// Connects with `config` and makes sure its stream exists.
    pub async fn with_config(config: NatsConfig) -> Result<Self, BusError> {
        let name = format!("NATS JetStream at {}", config.url);
        let unreachable = |e: &dyn std::fmt::Display| {
            BusError::backend(
                &name,
                format!(
                    "connecting failed: {e}; check that nats-server runs there with JetStream (-js)"
                ),
            )
        };
        let client = async_nats::ConnectOptions::new()
            .name("plexus")
            .connection_timeout(config.connect_timeout)
            .request_timeout(Some(config.request_timeout))
            .connect(config.url.as_str())
            .await
            .map_err(|e| unreachable(&e))?;
        let max_payload = client.server_info().max_payload;
        let mut context = jetstream::new(client.clone());
        context.set_timeout(config.request_timeout);
        let stream = context
            .get_or_create_stream(stream::Config {
                name: config.stream.clone(),
                subjects: vec![format!("{}.>", config.subject_prefix)],
                storage: stream::StorageType::File,
                max_bytes: config.max_bytes,
                max_age: config.max_age,
                duplicate_window: config.duplicate_window,
                discard: stream::DiscardPolicy::Old,
                ..Default::default()
            })
            .await
            .map_err(|e| unreachable(&format!("creating stream `{}`: {e}", config.stream)))?;
        Ok(NatsBus {
            shared: Arc::new(Shared {
                config,
                client,
                stream,
                name,
                max_payload,
                closed: CancellationToken::new(),
                closing: AtomicBool::new(false),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &NatsConfig {
        &self.shared.config
    }

    fn features(&self) -> Features {
        Features {
            persistent: true,
            per_key_order: false,
            consumer_groups: true,
            replay: true,
            nack_delay: true,
            max_message_bytes: self.shared.max_payload,
            exclusive_groups: false,
        }
    }

    async fn publish_batch(&self, topic: &str, batch: Vec<Message>) -> Result<(), BusError> {
        let shared = &self.shared;
        if shared.is_closed() {
            return Err(shared.closed_error("publisher"));
        }
        let subject = subject(&shared.config.subject_prefix, topic)?;
        let dedupe = shared.config.deduplicate.then_some(topic);
        let invalid = |reason| BusError::InvalidOption {
            option: "headers",
            reason,
        };
        // Every message is checked before any is sent; each is encoded as
        // it is sent, so that the first goes out before the last is built.
        // Messages made together share a time: each run of one time is
        // formatted once.
        let mut times: Vec<Arc<str>> = Vec::with_capacity(batch.len());
        let mut previous: Option<(SystemTime, Arc<str>)> = None;
        for message in &batch {
            let time = match &previous {
                Some((at, formatted)) if *at == message.time() => Arc::clone(formatted),
                _ => Arc::from(format_time(message.time())),
            };
            previous = Some((message.time(), Arc::clone(&time)));
            let size = binding::size(message, &time, dedupe).map_err(invalid)?;
            times.push(time);
            if size > shared.max_payload {
                return Err(BusError::TooLarge {
                    backend: shared.name.clone(),
                    topic: topic.to_owned(),
                    id: message.id().to_owned(),
                    size,
                    limit: shared.max_payload,
                });
            }
        }
        let context = jetstream::new(shared.client.clone());
        let mut acks = Vec::with_capacity(batch.len());
        for (message, time) in batch.iter().zip(&times) {
            let wire = binding::encode(message, time, dedupe).map_err(invalid)?;
            let ack = context
                .publish_with_headers(subject.clone(), wire.headers, wire.payload)
                .await
                .map_err(|e| shared.error(&format!("publishing to `{topic}`"), e))?;
            acks.push(ack.into_future());
        }
        try_join_all(acks).await.map_err(|e| {
            shared.error(
                &format!("publishing to `{topic}` (the stream's acknowledgement)"),
                e,
            )
        })?;
        Ok(())
    }

    async fn close_bus(&self) -> Result<(), BusError> {
        let shared = &self.shared;
        if shared.closing.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        shared.closed.cancel();
        shared
            .client
            .flush()
            .await
            .map_err(|e| shared.error("flushing before close", e))
    }
}

impl Publisher for NatsBus {
    /// Sends the batch and returns once the stream stored every message
    /// (JetStream's publish acknowledgement). A batch is not atomic: after
    /// an error some of it may be stored; publishing it again stores
    /// duplicates, unless [`NatsConfig::deduplicate`] is on (then none
    /// within the stream's duplicate window).
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
        NatsBus::features(self)
    }
}

impl Subscriber for NatsBus {
    fn subscribe<'a>(
        &'a self,
        topic: &'a str,
        options: SubscribeOptions,
    ) -> BoxFuture<'a, Result<Subscription, BusError>> {
        Box::pin(async move {
            if self.shared.is_closed() {
                return Err(self.shared.closed_error("subscriber"));
            }
            options.check(&self.shared.name, &NatsBus::features(self))?;
            subscription::subscribe(Arc::clone(&self.shared), topic, options).await
        })
    }

    fn close(&self) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(self.close_bus())
    }

    fn features(&self) -> Features {
        NatsBus::features(self)
    }
}
