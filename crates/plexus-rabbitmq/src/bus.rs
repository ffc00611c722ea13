//! [`RabbitBus`]: the publisher and subscriber on RabbitMQ.

use std::sync::Arc;
use std::time::Duration;

use lapin::options::BasicPublishOptions;
use lapin::types::ShortString;
use lapin::{Confirmation, PublisherConfirm};
use plexus_core::Message;
use plexus_core::bus::{
    BoxFuture, BusError, Features, Publisher, SubscribeOptions, Subscriber, Subscription,
};
use tokio::sync::RwLock;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::binding;
use crate::config::RabbitConfig;
use crate::link::{Links, connect, unreachable};
use crate::names::check_routing_key;
use crate::subscription;

/// How long closing waits for publishes in progress and for subscriptions
/// to remove their private queues.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// A bus on a RabbitMQ broker (AMQP 0.9.1): every topic is a routing key
/// of one durable topic exchange ([`RabbitConfig::exchange`]); every
/// consumer group a durable quorum queue bound to its topic, which the
/// group's members consume together; a subscription without a group has
/// a quorum queue of its own, deleted when it ends. Clones share the
/// connection; closing any closes all.
///
/// # Guarantees
///
/// - **Publish** returns once the broker confirmed every message of the
///   batch (publisher confirms: a quorum queue confirms once a majority
///   of its replicas stored the message). Messages are persistent. A
///   topic no group listens to drops what is published to it (RabbitMQ
///   keeps messages in queues, and a group's queue exists from its first
///   member on).
/// - **Groups** receive every message published after their queue was
///   declared (the first member's `subscribe`), and keep receiving while
///   no member runs (up to [`RabbitConfig::max_queue_length`]). A member
///   holds at most `max_in_flight` unanswered deliveries (the channel's
///   prefetch); a subscription never read consumes nothing.
/// - **Attempts** are counted by the quorum queue (`x-delivery-count`):
///   every nack, expired ack deadline, dropped delivery or lost
///   connection counts one.
/// - **Ack deadlines and nack delays** are kept by the subscription
///   (RabbitMQ has neither per message): a delivery unanswered past its
///   deadline is returned to the queue by the subscription; `nack(delay)`
///   holds the message for `delay`, then returns it. Both hold while the
///   connection does: a lost connection returns every unanswered message
///   at once.
/// - **Acks** return once written to the connection: AMQP 0.9.1 does not
///   confirm them, so an ack lost with the connection means one more
///   delivery.
/// - **Unreadable messages** (a `cloudEvents:id` with missing or invalid
///   attributes) are rejected without requeue: they go to the dead-letter
///   queue ([`RabbitConfig::dead_letters`]), with RabbitMQ's `x-death`
///   header naming the queue, and are never delivered.
/// - **Lost connections**: a publish fails (the next one connects again);
///   a subscription resumes on a new connection within
///   [`RabbitConfig::resume_within`], else yields an error and ends.
///
/// Per-key order is not offered: the members of a group consume one queue
/// in parallel and a returned message goes back to the queue while later
/// ones of its key are delivered.
///
/// ```no_run
/// # async fn run() -> Result<(), plexus_core::bus::BusError> {
/// use plexus_rabbitmq::RabbitBus;
/// let bus = RabbitBus::connect("amqp://guest:guest@127.0.0.1:5672/%2f").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RabbitBus {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) config: RabbitConfig,
    pub(crate) links: Links,
    /// The backend's name in errors (names the broker).
    pub(crate) name: String,
    pub(crate) closed: CancellationToken,
    /// Held for reading by each publish in progress; closing takes it for
    /// writing, so it waits for them.
    publishing: RwLock<()>,
    /// The subscriptions' tasks, which closing waits for.
    pub(crate) tasks: TaskTracker,
}

impl Shared {
    pub(crate) fn error(&self, doing: &str, reason: impl std::fmt::Display) -> BusError {
        unreachable(&self.name, doing, reason)
    }

    pub(crate) fn closed_error(&self, what: &'static str) -> BusError {
        BusError::Closed {
            backend: self.name.clone(),
            what,
        }
    }
}

impl RabbitBus {
    /// Connects to the broker at `url`
    /// (`amqp://USER:PASSWORD@HOST:PORT/VHOST[?exchange=NAME]`) with the
    /// defaults of [`RabbitConfig`].
    pub async fn connect(url: &str) -> Result<Self, BusError> {
        Self::with_config(RabbitConfig::from_url(url)?).await
    }

    /// Connects with `config` and declares its exchange (and the dead
    /// letters' exchange and queue).
    pub async fn with_config(config: RabbitConfig) -> Result<Self, BusError> {
        let name = format!("RabbitMQ at {}", config.broker());
        let link = connect(&config)
            .await
            .map_err(|reason| unreachable(&name, "connecting", reason))?;
        Ok(RabbitBus {
            shared: Arc::new(Shared {
                config,
                links: Links::new(link),
                name,
                closed: CancellationToken::new(),
                publishing: RwLock::new(()),
                tasks: TaskTracker::new(),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RabbitConfig {
        &self.shared.config
    }

    fn features(&self) -> Features {
        Features {
            persistent: true,
            per_key_order: false,
            consumer_groups: true,
            replay: false,
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
        check_routing_key(topic)?;
        if batch.is_empty() {
            return Ok(());
        }
        // Every message is checked before any is sent.
        let limit = shared.config.max_message_bytes;
        let mut encoded = Vec::with_capacity(batch.len());
        for message in &batch {
            let wire = binding::encode(message).map_err(|reason| BusError::InvalidOption {
                option: "message",
                reason,
            })?;
            if wire.size > limit {
                return Err(BusError::TooLarge {
                    backend: shared.name.clone(),
                    topic: topic.to_owned(),
                    id: message.id().to_owned(),
                    size: wire.size,
                    limit,
                });
            }
            encoded.push(wire.properties);
        }
        let _publishing = shared.publishing.read().await;
        if shared.closed.is_cancelled() {
            return Err(shared.closed_error("publisher"));
        }
        let doing = || format!("publishing to `{topic}`");
        let link = shared
            .links
            .get(&shared.config)
            .await
            .map_err(|reason| shared.error(&doing(), reason))?;
        let exchange = ShortString::from(shared.config.exchange.as_str());
        let routing_key = ShortString::from(topic);
        // Send all on one channel (a batch keeps its order), then wait
        // for all the confirms.
        let channel = link.publisher();
        let mut confirms: Vec<PublisherConfirm> = Vec::with_capacity(batch.len());
        for (message, properties) in batch.iter().zip(encoded) {
            let confirm = channel
                .basic_publish(
                    exchange.clone(),
                    routing_key.clone(),
                    BasicPublishOptions::default(),
                    message.payload(),
                    properties,
                )
                .await
                .map_err(|e| shared.error(&doing(), e))?;
            confirms.push(confirm);
        }
        for (message, confirm) in batch.iter().zip(confirms) {
            match confirm.await {
                Ok(Confirmation::Ack(_)) => {}
                Ok(Confirmation::Nack(_)) => {
                    return Err(BusError::Full {
                        topic: topic.to_owned(),
                        reason: format!(
                            "the broker refused message `{}` (a group's queue holds its \
                             maximum of {} messages, or the broker is out of resources)",
                            message.id(),
                            shared.config.max_queue_length
                        ),
                    });
                }
                Ok(Confirmation::NotRequested) => {
                    return Err(
                        shared.error(&doing(), "the publishing channel has no publisher confirms")
                    );
                }
                Err(e) => {
                    return Err(shared.error(&format!("{} (awaiting the confirm)", doing()), e));
                }
            }
        }
        Ok(())
    }

    async fn close_bus(&self) -> Result<(), BusError> {
        let shared = &self.shared;
        if shared.closed.is_cancelled() {
            return Ok(());
        }
        shared.closed.cancel();
        shared.tasks.close();
        let drained = async {
            let _publishing = shared.publishing.write().await;
            shared.tasks.wait().await;
        };
        if tokio::time::timeout(CLOSE_WAIT, drained).await.is_err() {
            tracing::warn!(broker = %shared.name, "closing: publishes or subscriptions still running after {CLOSE_WAIT:?}; closing the connection under them");
        }
        if let Some(link) = shared.links.take().await {
            // A connection already lost has nothing left to close; one
            // whose broker does not answer is dropped (its socket closed).
            let closing = link.connection.close(200, "plexus: closed".into());
            if tokio::time::timeout(CLOSE_WAIT, closing).await.is_err() {
                tracing::warn!(broker = %shared.name, "closing: the broker did not confirm closing the connection within {CLOSE_WAIT:?}; dropping it");
            }
        }
        Ok(())
    }
}

impl Publisher for RabbitBus {
    /// Sends the batch on a publishing channel and returns once the
    /// broker confirmed every message (all are sent first, then all
    /// confirms awaited). A batch is not atomic: after an error some of it
    /// may be stored; publishing it again stores duplicates. A message
    /// the broker refuses (a group's queue full) fails the publish with
    /// `BusError::Full`, after the messages before it were stored (and
    /// after the groups whose queues had room stored it too: publishing it
    /// again duplicates it for them).
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
        RabbitBus::features(self)
    }
}

impl Subscriber for RabbitBus {
    fn subscribe<'a>(
        &'a self,
        topic: &'a str,
        options: SubscribeOptions,
    ) -> BoxFuture<'a, Result<Subscription, BusError>> {
        Box::pin(async move {
            if self.shared.closed.is_cancelled() {
                return Err(self.shared.closed_error("subscriber"));
            }
            options.check(&self.shared.name, &RabbitBus::features(self))?;
            check_routing_key(topic)?;
            subscription::subscribe(Arc::clone(&self.shared), topic, options).await
        })
    }

    fn close(&self) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(self.close_bus())
    }

    fn features(&self) -> Features {
        RabbitBus::features(self)
    }
}
