//! A member of a consumer group: a stream that, from its first read,
//! pulls from the group's consumer (async-nats's pull stream, batches of
//! its `max_in_flight`) and yields a message whenever it holds fewer than
//! `max_in_flight` unanswered; what the server sent ahead waits in the
//! client, leased, so a member holds at most twice `max_in_flight` of the
//! group's messages. A subscription nobody ever reads pulls nothing, so it
//! holds no message away from the other members. Pulling runs in the
//! reader's task: no task or channel stands between the pull stream and
//! the subscription.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, SystemTime};

use async_nats::Subject;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::{self, AckKind};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use plexus_core::bus::{
    Acker, BoxFuture, BusError, Delivery, StartFrom, SubscribeOptions, Subscription,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::{PollSemaphore, WaitForCancellationFutureOwned};

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
    let closed = Box::pin(shared.closed.clone().cancelled_owned());
    let member = Arc::new(Member {
        shared,
        consumer,
        topic: Arc::from(topic),
        max_in_flight: options.max_in_flight,
        ephemeral: options.group.is_none(),
    });
    Ok(Subscription::new(Pulling {
        member,
        room: PollSemaphore::new(Arc::new(Semaphore::new(options.max_in_flight))),
        permit: None,
        state: State::Idle,
        closed,
    }))
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

/// What a member needs to pull and to make deliveries.
struct Member {
    shared: Arc<Shared>,
    consumer: PullConsumer,
    topic: Arc<str>,
    max_in_flight: usize,
    ephemeral: bool,
}

/// Where a member's pulling stands.
enum State {
    /// Not pulling: never read yet, or a pause after an error ended.
    Idle,
    /// Starting a pull stream.
    Opening(BoxFuture<'static, Result<pull::Stream, String>>),
    /// Pulling.
    Open(Box<pull::Stream>),
    /// Pausing after an error, before pulling again.
    Pausing(Pin<Box<tokio::time::Sleep>>),
}

/// A member's stream of deliveries (see the module).
struct Pulling {
    member: Arc<Member>,
    /// One permit per delivery this member may still hold.
    room: PollSemaphore,
    /// Taken for the next delivery before pulling it.
    permit: Option<OwnedSemaphorePermit>,
    state: State,
    /// Ready once the bus closed: the stream ends.
    closed: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl Pulling {
    /// Pauses [`RETRY`] before pulling again after `error` (the server
    /// restarting, say).
    fn pause(&mut self, error: &str) {
        tracing::debug!(topic = %self.member.topic, %error, "pulling messages failed; pulling again");
        self.state = State::Pausing(Box::pin(tokio::time::sleep(RETRY)));
    }

    /// The next delivery, pulling (again) as needed.
    fn poll_pulled(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Delivery, BusError>>> {
        loop {
            match &mut self.state {
                State::Idle => {
                    let member = Arc::clone(&self.member);
                    self.state = State::Opening(Box::pin(async move { member.pull().await }));
                }
                State::Opening(opening) => match ready!(opening.as_mut().poll(cx)) {
                    Ok(stream) => self.state = State::Open(Box::new(stream)),
                    Err(error) => self.pause(&error),
                },
                State::Pausing(pause) => {
                    ready!(pause.as_mut().poll(cx));
                    self.state = State::Idle;
                }
                State::Open(stream) => {
                    let permit = match self.permit.take() {
                        Some(permit) => permit,
                        None => match ready!(self.room.poll_acquire(cx)) {
                            Some(permit) => permit,
                            None => return Poll::Ready(None),
                        },
                    };
                    match stream.poll_next_unpin(cx) {
                        Poll::Pending => {
                            self.permit = Some(permit);
                            return Poll::Pending;
                        }
                        Poll::Ready(Some(Ok(message))) => {
                            if let Some(delivery) = self.member.delivery(message, permit) {
                                return Poll::Ready(Some(Ok(delivery)));
                            }
                        }
                        Poll::Ready(Some(Err(error))) => self.pause(&error.to_string()),
                        Poll::Ready(None) => self.pause("the pull stream ended"),
                    }
                }
            }
        }
    }
}

impl Stream for Pulling {
    type Item = Result<Delivery, BusError>;

    /// Ends once the bus is closed (checked first; waited for only when
    /// nothing else is ready).
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.member.shared.is_closed() {
            return Poll::Ready(None);
        }
        match this.poll_pulled(cx) {
            Poll::Pending if this.closed.as_mut().poll(cx).is_ready() => Poll::Ready(None),
            polled => polled,
        }
    }
}

impl Drop for Pulling {
    /// A subscription without a group takes its consumer with it.
    fn drop(&mut self) {
        let shared = &self.member.shared;
        if self.member.ephemeral
            && !shared.is_closed()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let name = self.member.consumer.cached_info().name.clone();
            let stream = shared.stream.clone();
            runtime.spawn(async move {
                let _ = stream.delete_consumer(&name).await;
            });
        }
    }
}

impl Member {
    /// The id of a message at `sequence` of the stream that carries no
    /// `ce-id` (and how a malformed one is named in logs).
    fn fallback_id(&self, sequence: u64) -> String {
        format!("{}-{sequence}", self.shared.config.stream)
    }

    /// A pull stream on the group's consumer: batches of
    /// `max_in_flight`, each pull renewed after `pull_wait`.
    async fn pull(&self) -> Result<pull::Stream, String> {
        self.consumer
            .stream()
            .max_messages_per_batch(self.max_in_flight)
            .expires(self.shared.config.pull_wait)
            .messages()
            .await
            .map_err(|e| e.to_string())
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
        let Some(reply) = self.reply.take() else {
            return Ok(());
        };
        let shared = &self.shared;
        if shared.is_closed() {
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
            && !self.shared.is_closed()
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
