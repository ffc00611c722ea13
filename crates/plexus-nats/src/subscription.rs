//! A member of a consumer group: once its subscription is first read,
//! pulls from the group's consumer continuously (batches of its
//! `max_in_flight`) and hands a message out whenever it holds fewer than
//! `max_in_flight` unanswered; what it pulled ahead waits in the client,
//! leased, so a member holds at most twice `max_in_flight` of the group's
//! messages. A subscription nobody ever reads pulls nothing, so it holds
//! no message away from the other members.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_nats::Subject;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::{self, AckKind};
use bytes::Bytes;
use futures::StreamExt;
use plexus_core::bus::{
    Acker, BoxFuture, BusError, Delivery, StartFrom, SubscribeOptions, Subscription,
};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};

use crate::binding;
use crate::bus::Shared;
use crate::subject::{consumer_name, subject};

/// How long a member waits before pulling again after an error (the
/// server restarting, say).
const RETRY: Duration = Duration::from_millis(250);
/// How long an ephemeral consumer (a subscription without a group)
/// outlives its subscriber if nobody deletes it.
const EPHEMERAL_IDLE: Duration = Duration::from_secs(30);

/// Joins `options.group` (or a group of one) on `topic`.
pub(crate) async fn subscribe(
    shared: Arc<Shared>,
    topic: &str,
    options: SubscribeOptions,
) -> Result<Subscription, BusError> {
    let subject = subject(&shared.config.subject_prefix, topic)?;
    let consumer = consumer(&shared, topic, subject, &options).await?;
    let (deliveries, mut received) = mpsc::channel(options.max_in_flight);
    // Notified when the subscription is first read (and on later reads
    // finding nothing, which changes nothing once it pulls).
    let wanted = Arc::new(Notify::new());
    let member = Member {
        wanted: Arc::clone(&wanted),
        shared,
        consumer,
        topic: Arc::from(topic),
        room: Arc::new(Semaphore::new(options.max_in_flight)),
        max_in_flight: options.max_in_flight,
        ephemeral: options.group.is_none(),
    };
    tokio::spawn(member.run(deliveries));
    Ok(Subscription::new(futures::stream::poll_fn(move |cx| {
        let next = received.poll_recv(cx);
        if next.is_pending() {
            wanted.notify_one();
        }
        next
    })))
}

/// The group's durable consumer (made if missing; its ack wait set to
/// this member's ack deadline if another member set another), or an
/// ephemeral one for a subscription without a group.
async fn consumer(
    shared: &Shared,
    topic: &str,
    filter_subject: String,
    options: &SubscribeOptions,
) -> Result<PullConsumer, BusError> {
    let mut config = pull::Config {
        filter_subject,
        ack_policy: AckPolicy::Explicit,
        ack_wait: options.ack_deadline,
        deliver_policy: match options.start {
            StartFrom::New => DeliverPolicy::New,
            StartFrom::Earliest => DeliverPolicy::All,
        },
        max_ack_pending: shared.config.max_ack_pending,
        ..Default::default()
    };
    let Some(group) = &options.group else {
        config.inactive_threshold = EPHEMERAL_IDLE.max(options.ack_deadline * 2);
        return shared
            .stream
            .create_consumer(config)
            .await
            .map_err(|e| shared.error(&format!("subscribing to `{topic}`"), e));
    };
    let doing = || format!("joining group `{group}` of topic `{topic}`");
    let name = consumer_name(topic, group);
    config.durable_name = Some(name.clone());
    let consumer: PullConsumer = shared
        .stream
        .get_or_create_consumer(&name, config.clone())
        .await
        .map_err(|e| shared.error(&doing(), e))?;
    let existing = &consumer.cached_info().config;
    if existing.ack_wait == options.ack_deadline {
        return Ok(consumer);
    }
    // The group started elsewhere keeps its start; the ack wait follows
    // the newest member (JetStream has one per consumer; creating a
    // durable consumer again with a new ack wait updates it).
    config.deliver_policy = existing.deliver_policy;
    shared
        .stream
        .create_consumer(config)
        .await
        .map_err(|e| shared.error(&doing(), e))
}

struct Member {
    /// Notified when the subscription is read with nothing to hand out;
    /// the member pulls from the first time on.
    wanted: Arc<Notify>,
    shared: Arc<Shared>,
    consumer: PullConsumer,
    topic: Arc<str>,
    /// One permit per delivery this member may still hold.
    room: Arc<Semaphore>,
    max_in_flight: usize,
    ephemeral: bool,
}

impl Member {
    /// The id of a message at `sequence` of the stream that carries no
    /// `ce-id` (and how a malformed one is named in logs).
    fn fallback_id(&self, sequence: u64) -> String {
        format!("{}-{sequence}", self.shared.config.stream)
    }

    /// Pulls and hands out deliveries until the subscription is dropped
    /// or the bus closed.
    async fn run(self, deliveries: mpsc::Sender<Result<Delivery, BusError>>) {
        let closed = self.shared.closed.clone();
        let read = tokio::select! {
            () = closed.cancelled() => false,
            () = deliveries.closed() => false,
            () = self.wanted.notified() => true,
        };
        while read && !closed.is_cancelled() {
            let pulled = tokio::select! {
                biased;
                () = closed.cancelled() => break,
                () = deliveries.closed() => break,
                pulled = self.pull(&deliveries) => pulled,
            };
            if let Err(error) = pulled {
                tracing::debug!(topic = %self.topic, %error, "pulling messages failed; pulling again");
                tokio::select! {
                    () = closed.cancelled() => break,
                    () = deliveries.closed() => break,
                    () = tokio::time::sleep(RETRY) => {}
                }
            }
        }
        if self.ephemeral && !closed.is_cancelled() {
            let name = self.consumer.cached_info().name.clone();
            let _ = self.shared.stream.delete_consumer(&name).await;
        }
    }

    /// Pulls continuously (async-nats's pull stream, batches of
    /// `max_in_flight`), handing out each message once a permit is free;
    /// returns on an error of the stream.
    async fn pull(
        &self,
        deliveries: &mpsc::Sender<Result<Delivery, BusError>>,
    ) -> Result<(), String> {
        let mut pulled = self
            .consumer
            .stream()
            .max_messages_per_batch(self.max_in_flight)
            .expires(self.shared.config.pull_wait)
            .messages()
            .await
            .map_err(|e| e.to_string())?;
        loop {
            let permit = Arc::clone(&self.room)
                .acquire_owned()
                .await
                .map_err(|e| e.to_string())?;
            let Some(message) = pulled.next().await else {
                return Err("the pull stream ended".to_owned());
            };
            let message = message.map_err(|e| e.to_string())?;
            if let Some(delivery) = self.delivery(message, permit)
                && deliveries.send(Ok(delivery)).await.is_err()
            {
                return Ok(());
            }
        }
    }

    /// The delivery of `message`; `None` (the message terminated, the
    /// reason logged) when it cannot be read as a plexus message.
    fn delivery(
        &self,
        message: jetstream::Message,
        permit: OwnedSemaphorePermit,
    ) -> Option<Delivery> {
        let (attempt, stream_sequence, published) = match message.info() {
            Ok(info) => (
                u32::try_from(info.delivered).unwrap_or(u32::MAX),
                info.stream_sequence,
                SystemTime::from(info.published),
            ),
            Err(error) => {
                tracing::error!(topic = %self.topic, %error, "a message without JetStream metadata; skipped");
                return None;
            }
        };
        let reply = message.message.reply.clone();
        let decoded = binding::decode(
            message.message.headers.as_ref(),
            message.message.payload.clone(),
            message.message.subject.as_str(),
            || self.fallback_id(stream_sequence),
            published,
        );
        let acker = NatsAcker {
            shared: Arc::clone(&self.shared),
            reply,
            _permit: permit,
        };
        match decoded {
            Ok(decoded) => Some(Delivery::new(
                decoded,
                Arc::clone(&self.topic),
                attempt,
                Box::new(acker),
            )),
            Err(reason) => {
                tracing::error!(
                    topic = %self.topic,
                    message = %self.fallback_id(stream_sequence),
                    %reason,
                    "a message that is not a valid CloudEvent in binary content mode; terminated (never delivered again)"
                );
                acker.finish(Bytes::from(AckKind::Term));
                None
            }
        }
    }
}

/// Answers one delivery on its JetStream reply subject; holds one unit
/// of its member's room until answered or dropped.
struct NatsAcker {
    shared: Arc<Shared>,
    /// `None` once answered.
    reply: Option<Subject>,
    _permit: OwnedSemaphorePermit,
}

impl NatsAcker {
    /// Sends `body` and waits for the server to confirm it (an ack is
    /// stored once this returns).
    async fn answer(mut self: Box<Self>, body: AckKind) -> Result<(), BusError> {
        let shared = Arc::clone(&self.shared);
        let Some(reply) = self.reply.take() else {
            return Ok(());
        };
        if shared.closed.is_cancelled() {
            return Err(shared.closed_error("subscriber"));
        }
        shared
            .client
            .request(reply, Bytes::from(body))
            .await
            .map(|_| ())
            .map_err(|e| shared.error("answering a delivery", e))
    }

    /// Sends `body` without waiting.
    fn finish(mut self, body: Bytes) {
        if let Some(reply) = self.reply.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let client = self.shared.client.clone();
            runtime.spawn(async move { client.publish(reply, body).await });
        }
    }
}

impl Drop for NatsAcker {
    /// A delivery dropped unanswered goes back at once (a NAK), not at
    /// its ack deadline.
    fn drop(&mut self) {
        if let Some(reply) = self.reply.take()
            && !self.shared.closed.is_cancelled()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let client = self.shared.client.clone();
            runtime
                .spawn(async move { client.publish(reply, Bytes::from(AckKind::Nak(None))).await });
        }
    }
}

impl Acker for NatsAcker {
    fn ack(self: Box<Self>) -> BoxFuture<'static, Result<(), BusError>> {
        Box::pin(self.answer(AckKind::Ack))
    }

    fn nack(self: Box<Self>, delay: Duration) -> BoxFuture<'static, Result<(), BusError>> {
        let kind = AckKind::Nak((!delay.is_zero()).then_some(delay));
        Box::pin(self.answer(kind))
    }
}
