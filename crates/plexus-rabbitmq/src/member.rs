//! [`Member`]: one subscription's task. Once its subscription is first
//! read it consumes its queue on a channel of its own (prefetch
//! `max_in_flight`), hands deliveries out one at a time as they are
//! taken, returns those left unanswered past the ack deadline, and resumes
//! on a new connection after a lost one; when it ends it cancels its
//! consumer (so the broker passes the acks sent before to the queue) and
//! removes a private queue.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use lapin::options::{
    BasicCancelOptions, BasicConsumeOptions, BasicQosOptions, BasicRejectOptions, QueueBindOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Consumer};
use plexus_core::bus::{BusError, Delivery};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use crate::acker::{RabbitAcker, Session, Slot};
use crate::binding;
use crate::bus::Shared;
use crate::link::declare_queue;

/// How long a member waits before trying again to resume.
const RETRY: Duration = Duration::from_millis(250);
/// How often a member whose subscription is not read checks that its
/// channel is still open.
const LIVENESS: Duration = Duration::from_secs(1);
/// How long a member leaving waits for the broker to cancel its consumer
/// or delete its private queue.
const CANCEL_WAIT: Duration = Duration::from_secs(5);

/// What the member hands its subscription: a delivery and its slot (an
/// expired one is skipped when read).
pub(crate) type Item = Result<(Delivery, Arc<Slot>), BusError>;

/// How consuming on one channel ended.
enum Ended {
    /// The bus was closed.
    Closed,
    /// The subscription was dropped.
    Dropped,
    /// The channel or connection failed.
    Lost {
        reason: String,
        /// Whether the channel handed anything out before.
        handed_out: bool,
    },
}

/// One subscription's consuming (see the module documentation).
pub(crate) struct Member {
    pub(crate) shared: Arc<Shared>,
    pub(crate) topic: Arc<str>,
    /// The queue it consumes.
    pub(crate) queue: String,
    /// The queue's arguments, declared again when resuming.
    pub(crate) arguments: FieldTable,
    pub(crate) prefetch: u16,
    pub(crate) max_in_flight: usize,
    pub(crate) ack_deadline: Duration,
    /// A subscription without a group: its queue goes with it.
    pub(crate) private: bool,
    /// Notified when the subscription is read with nothing to hand out;
    /// the member consumes from the first time on.
    pub(crate) wanted: Arc<Notify>,
}

impl Member {
    /// A channel on the current connection with the queue declared and
    /// bound to the topic.
    pub(crate) async fn open(&self) -> Result<Channel, String> {
        let shared = &self.shared;
        let link = shared.links.get(&shared.config).await?;
        let channel = link
            .connection
            .create_channel()
            .await
            .map_err(|e| format!("opening a channel failed: {e}"))?;
        declare_queue(&channel, &self.queue, self.arguments.clone()).await?;
        channel
            .queue_bind(
                self.queue.as_str().into(),
                shared.config.exchange.as_str().into(),
                self.topic.as_ref().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| format!("binding queue `{}` failed: {e}", self.queue))?;
        Ok(channel)
    }

    /// [`open`](Self::open) for a new subscription, tried once more after
    /// [`RETRY`] when it fails, as a member resuming tries again: the
    /// broker may close the connection under a join for another channel's
    /// error (a consume on a quorum queue whose process is not up answers
    /// INTERNAL_ERROR, which closes the whole connection; seen in
    /// `plexus demo`), and the second try opens a new one.
    pub(crate) async fn join(&self) -> Result<Channel, String> {
        let first = match self.open().await {
            Ok(channel) => return Ok(channel),
            Err(first) => first,
        };
        tracing::debug!(topic = %self.topic, reason = %first, "joining failed; trying once more");
        tokio::select! {
            () = self.shared.closed.cancelled() => return Err(first),
            () = tokio::time::sleep(RETRY) => {}
        }
        self.open().await.map_err(|second| {
            if second == first {
                second
            } else {
                format!("{second} (the first try: {first})")
            }
        })
    }

    /// Starts consuming on `channel`, its prefetch `max_in_flight`.
    async fn consumer(&self, channel: &Channel) -> Result<Consumer, String> {
        channel
            .basic_qos(self.prefetch, BasicQosOptions::default())
            .await
            .map_err(|e| format!("setting the prefetch failed: {e}"))?;
        channel
            .basic_consume(
                self.queue.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| format!("consuming queue `{}` failed: {e}", self.queue))
    }

    /// Consumes and hands out deliveries until the subscription is dropped
    /// or the bus closed, resuming after lost connections; then removes
    /// a private queue.
    pub(crate) async fn run(self, first: Channel, deliveries: mpsc::Sender<Item>) {
        let closed = self.shared.closed.clone();
        let read = tokio::select! {
            () = closed.cancelled() => false,
            () = deliveries.closed() => false,
            () = self.wanted.notified() => true,
        };
        let last = if read {
            self.serve(first, &deliveries).await
        } else {
            Some(first)
        };
        if self.private
            && let Some(channel) = &last
            && channel.status().connected()
        {
            let deleting = channel.queue_delete(self.queue.as_str().into(), Default::default());
            match tokio::time::timeout(CANCEL_WAIT, deleting).await {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => {
                    tracing::debug!(queue = %self.queue, %error, "deleting a private queue failed; it expires on its own");
                }
                Err(_) => {
                    tracing::debug!(queue = %self.queue, "deleting a private queue timed out; it expires on its own");
                }
            }
        }
        // When the bus closes, the channel is closed here, before the bus
        // closes the connection: dropped, lapin would close it in the
        // background, find it closing already (the connection's close marks
        // every channel so) and drop the connection as broken, unfinished.
        // A subscription dropped on an open bus leaves its channel to its
        // last handle, so that deliveries handed out can still be acked.
        if closed.is_cancelled()
            && let Some(channel) = last
            && channel.status().connected()
        {
            let closing = channel.close(200, "plexus: subscription ended".into());
            if !matches!(tokio::time::timeout(CANCEL_WAIT, closing).await, Ok(Ok(()))) {
                tracing::debug!(queue = %self.queue, "closing a consumer's channel failed or timed out");
            }
        }
    }

    /// Consumes on `first`, then on new channels after failures, until the
    /// subscription is dropped or the bus closed (returning the channel
    /// last used), or resuming failed for `resume_within` (`None`).
    async fn serve(&self, first: Channel, deliveries: &mpsc::Sender<Item>) -> Option<Channel> {
        let mut channel = Some(first);
        // Since when consuming failed without handing anything out.
        let mut failing_since: Option<Instant> = None;
        loop {
            let current = match channel.take() {
                Some(current) => current,
                None => {
                    let since = *failing_since.get_or_insert_with(Instant::now);
                    self.resume(since, deliveries).await?
                }
            };
            let ended = match self.consumer(&current).await {
                Ok(mut consumer) => {
                    let session = Arc::new(Session::new(current.status().clone()));
                    let ended = self.consume(&mut consumer, &session, deliveries).await;
                    if matches!(ended, Ended::Closed | Ended::Dropped) {
                        self.cancel(&current, &consumer).await;
                    }
                    session.end();
                    ended
                }
                Err(reason) => Ended::Lost {
                    reason,
                    handed_out: false,
                },
            };
            match ended {
                Ended::Closed | Ended::Dropped => return Some(current),
                Ended::Lost { reason, handed_out } => {
                    if handed_out {
                        failing_since = None;
                    }
                    tracing::warn!(topic = %self.topic, queue = %self.queue, %reason, "consuming failed; resuming on a new channel");
                }
            }
        }
    }

    /// Cancels `consumer` and waits for the broker to confirm (the acks
    /// sent before are then passed to the queue).
    async fn cancel(&self, channel: &Channel, consumer: &Consumer) {
        let cancelled = tokio::time::timeout(
            CANCEL_WAIT,
            channel.basic_cancel(consumer.tag(), BasicCancelOptions::default()),
        )
        .await;
        if !matches!(cancelled, Ok(Ok(()))) {
            tracing::debug!(queue = %self.queue, "cancelling a consumer failed or timed out");
        }
    }

    /// A new channel on a working connection, tried every `RETRY` until
    /// `resume_within` after `since`; `None` when the subscription was dropped, the bus
    /// closed, or the time is up (the subscription then gets the error).
    async fn resume(&self, since: Instant, deliveries: &mpsc::Sender<Item>) -> Option<Channel> {
        let closed = &self.shared.closed;
        let give_up = since + self.shared.config.resume_within;
        loop {
            tokio::select! {
                () = closed.cancelled() => return None,
                () = deliveries.closed() => return None,
                () = tokio::time::sleep(RETRY) => {}
            }
            match self.open().await {
                Ok(channel) => return Some(channel),
                Err(reason) if Instant::now() >= give_up => {
                    let error = self.shared.error(
                        &format!(
                            "resuming the subscription to `{}` (queue `{}`) for {:?}",
                            self.topic, self.queue, self.shared.config.resume_within
                        ),
                        reason,
                    );
                    let _ = deliveries.send(Err(error)).await;
                    return None;
                }
                Err(reason) => {
                    tracing::debug!(topic = %self.topic, %reason, "resuming failed; trying again");
                }
            }
        }
    }

    /// Hands out what `consumer` delivers, one at a time as the
    /// subscription takes them, and returns deliveries unanswered past the
    /// ack deadline.
    async fn consume(
        &self,
        consumer: &mut Consumer,
        session: &Arc<Session>,
        deliveries: &mpsc::Sender<Item>,
    ) -> Ended {
        let closed = &self.shared.closed;
        // Deliveries in the order they came, with their deadlines (all
        // deadlines are the same time after arrival, so the front is the
        // earliest). Answered ones leave when they reach the front, or
        // when the queue is compacted.
        let mut unanswered: VecDeque<(Instant, Arc<Slot>)> = VecDeque::new();
        let mut incoming: Option<Item> = None;
        let timer = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(timer);
        let mut armed: Option<Instant> = None;
        // While the subscription is not read, the connection is checked
        // this often (the consumer, not polled then, would not say).
        let mut handed_out = false;
        let mut liveness = tokio::time::interval(LIVENESS);
        liveness.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            while unanswered
                .front()
                .is_some_and(|(_, slot)| !slot.is_pending())
            {
                unanswered.pop_front();
            }
            let next_deadline = unanswered.front().map(|(deadline, _)| *deadline);
            if let Some(deadline) = next_deadline
                && armed != Some(deadline)
            {
                timer.as_mut().reset(deadline);
                armed = Some(deadline);
            }
            tokio::select! {
                biased;
                () = closed.cancelled() => return Ended::Closed,
                () = &mut timer, if next_deadline.is_some() => {
                    armed = None;
                    let now = Instant::now();
                    while let Some((deadline, slot)) = unanswered.front() {
                        if *deadline > now {
                            break;
                        }
                        slot.expire().await;
                        unanswered.pop_front();
                    }
                }
                permit = deliveries.reserve(), if incoming.is_some() => match (permit, incoming.take()) {
                    (Ok(permit), Some(item)) => {
                        permit.send(item);
                        handed_out = true;
                    }
                    _ => return Ended::Dropped,
                },
                _ = liveness.tick(), if incoming.is_some() => {
                    if !session.alive() {
                        return Ended::Lost {
                            reason: "the channel closed while the subscription was not read".to_owned(),
                            handed_out,
                        };
                    }
                }
                () = deliveries.closed(), if incoming.is_none() => return Ended::Dropped,
                next = consumer.next(), if incoming.is_none() => match next {
                    Some(Ok(delivery)) => {
                        if let Some((delivery, slot)) = self.delivery(delivery, session).await {
                            unanswered.push_back((Instant::now() + self.ack_deadline, Arc::clone(&slot)));
                            if unanswered.len() > 2 * self.max_in_flight + 16 {
                                unanswered.retain(|(_, slot)| slot.is_pending());
                            }
                            incoming = Some(Ok((delivery, slot)));
                        }
                    }
                    Some(Err(e)) => return Ended::Lost { reason: e.to_string(), handed_out },
                    None => return Ended::Lost {
                        reason: "the broker cancelled the consumer (the queue was deleted?)".to_owned(),
                        handed_out,
                    },
                },
            }
        }
    }

    /// The delivery of `delivery` and its slot; `None` (the message
    /// rejected without requeue, so dead-lettered, the reason logged) when
    /// it cannot be read as a plexus message.
    async fn delivery(
        &self,
        delivery: lapin::message::Delivery,
        session: &Arc<Session>,
    ) -> Option<(Delivery, Arc<Slot>)> {
        let lapin::message::Delivery {
            exchange,
            routing_key,
            properties,
            data,
            acker,
            ..
        } = delivery;
        let attempt = binding::attempt(&properties);
        match binding::decode(
            &properties,
            Bytes::from(data),
            exchange.as_str(),
            routing_key.as_str(),
        ) {
            Ok(message) => {
                let slot = Arc::new(Slot::new(acker, Arc::clone(session)));
                let acker = RabbitAcker {
                    slot: Arc::clone(&slot),
                    shared: Arc::clone(&self.shared),
                };
                let delivery =
                    Delivery::new(message, Arc::clone(&self.topic), attempt, Box::new(acker));
                Some((delivery, slot))
            }
            Err(reason) => {
                tracing::error!(
                    topic = %self.topic,
                    queue = %self.queue,
                    %reason,
                    "a message that is not a valid CloudEvent in binary content mode; rejected to the dead letters (never delivered)"
                );
                let _ = session
                    .settle(acker.reject(BasicRejectOptions { requeue: false }))
                    .await;
                None
            }
        }
    }
}
