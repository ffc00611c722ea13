//! A member of a group: the stream of its deliveries, and the acker that
//! answers one.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures::stream;
use plexus_core::bus::{Acker, BoxFuture, BusError, Delivery, SubscribeOptions, Subscription};
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

use crate::bus::Shared;
use crate::writer::{Claimed, Command, Joined};

/// Joins the group of `options` (a new private group without one) and
/// returns the member's stream.
pub(crate) async fn open(
    shared: Arc<Shared>,
    topic: &str,
    options: SubscribeOptions,
) -> Result<Subscription, BusError> {
    let (group, private) = match &options.group {
        Some(group) => (group.clone(), false),
        None => (format!("~private-{}", uuid::Uuid::now_v7()), true),
    };
    let (reply, answer) = oneshot::channel();
    let command = Command::Join {
        topic: topic.to_owned(),
        group,
        private,
        start: options.start,
        reply,
    };
    let Joined { topic_id, group_id } = shared.call("subscriber", command, answer).await?;
    let lock = crate::exclusive::lock_path(&shared.config, group_id);
    if let Some(group) = &options.group
        && lock.exists()
    {
        return Err(BusError::invalid(
            "exclusive",
            format!(
                "group `{group}` of topic `{topic}` is exclusive (its lock file {} exists): its members subscribe with SubscribeOptions::exclusive(), or use another group",
                lock.display()
            ),
        ));
    }
    let member = Member {
        shared,
        topic: topic.into(),
        topic_id,
        group_id,
        private,
        options,
        slots: Arc::new(Slots::default()),
        leases: VecDeque::new(),
        buffer: VecDeque::new(),
    };
    Ok(Subscription::new(stream::unfold(
        Some(member),
        |member| async move {
            let mut member = member?;
            match member.next().await? {
                Ok(delivery) => Some((Ok(delivery), Some(member))),
                // The stream ends after an error.
                Err(error) => Some((Err(error), None)),
            }
        },
    )))
}

/// The member's unanswered deliveries, counted against `max_in_flight`.
#[derive(Debug, Default)]
struct Slots {
    held: AtomicUsize,
    /// Woken when a slot is freed.
    freed: Notify,
}

/// One delivery's place among the member's unanswered ones: freed by its
/// answer, its drop, or its ack deadline, whichever comes first.
#[derive(Debug, Default)]
struct Slot {
    freed: AtomicBool,
}

impl Slot {
    fn free(&self, slots: &Slots) {
        if !self.freed.swap(true, Ordering::AcqRel) {
            slots.held.fetch_sub(1, Ordering::AcqRel);
            slots.freed.notify_waiters();
        }
    }
}

/// One subscription's place in its group; a private group is removed when
/// the subscription is dropped.
struct Member {
    shared: Arc<Shared>,
    topic: Arc<str>,
    topic_id: i64,
    group_id: i64,
    private: bool,
    options: SubscribeOptions,
    slots: Arc<Slots>,
    /// Held slots by ack deadline (every lease of a member has the same
    /// deadline length, so this is in deadline order).
    leases: VecDeque<(Instant, Arc<Slot>)>,
    /// Claimed deliveries not yet yielded.
    buffer: VecDeque<Delivery>,
}

impl Drop for Member {
    fn drop(&mut self) {
        if !self.private || self.shared.closed.is_cancelled() {
            return;
        }
        let command = Command::Leave {
            group_id: self.group_id,
        };
        if let Err(tokio::sync::mpsc::error::TrySendError::Full(command)) =
            self.shared.commands.try_send(command)
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let commands = self.shared.commands.clone();
            runtime.spawn(async move {
                let _ = commands.send(command).await;
            });
        }
    }
}

impl Member {
    /// The next delivery; `None` once the bus is closed.
    async fn next(&mut self) -> Option<Result<Delivery, BusError>> {
        let max = self.options.max_in_flight;
        loop {
            if self.shared.closed.is_cancelled() {
                return None;
            }
            if let Some(delivery) = self.buffer.pop_front() {
                return Some(Ok(delivery));
            }
            self.expire();
            let freed = Arc::clone(&self.slots);
            let freed = freed.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            let held = self.slots.held.load(Ordering::Acquire);
            if held >= max {
                // Wait for an answer, or for the first ack deadline.
                let deadline = self.leases.front().map(|(at, _)| *at);
                tokio::select! {
                    () = &mut freed => {}
                    () = sleep_until(deadline) => {}
                    () = self.shared.closed.cancelled() => return None,
                }
                continue;
            }
            // A claim that finds nothing waits at the writer for the next
            // commit that gives the topic something, or for the poll
            // interval (writes by other processes), then comes back empty.
            let claimed = tokio::select! {
                claimed = self.claim(max - held) => claimed,
                () = self.shared.closed.cancelled() => return None,
            };
            let claimed = match claimed {
                Ok(claimed) => claimed,
                Err(error) if self.shared.closed.is_cancelled() => {
                    tracing::debug!(%error, "claim ended by close");
                    return None;
                }
                Err(error) => return Some(Err(error)),
            };
            if claimed.gone {
                return Some(Err(BusError::backend(
                    self.shared.name.as_ref(),
                    format!(
                        "the subscription's group on topic `{}` was removed (a private group unseen for longer than SqliteConfig::private_group_expiry); subscribe again",
                        self.topic
                    ),
                )));
            }
            self.accept(claimed);
        }
    }

    async fn claim(&self, max: usize) -> Result<Claimed, BusError> {
        let (reply, answer) = oneshot::channel();
        let command = Command::Claim {
            topic: Arc::clone(&self.topic),
            topic_id: self.topic_id,
            group_id: self.group_id,
            max,
            ack_deadline: self.options.ack_deadline,
            until: Instant::now() + self.shared.config.poll_interval,
            reply,
        };
        self.shared.call("subscriber", command, answer).await
    }

    /// Turns leased messages into buffered deliveries holding slots.
    fn accept(&mut self, claimed: Claimed) {
        let deadline = Instant::now() + self.options.ack_deadline;
        self.slots
            .held
            .fetch_add(claimed.leased.len(), Ordering::AcqRel);
        for (seq, attempt, message) in claimed.leased {
            let slot = Arc::new(Slot::default());
            self.leases.push_back((deadline, Arc::clone(&slot)));
            let acker = SqliteAcker {
                shared: Arc::clone(&self.shared),
                topic: Arc::clone(&self.topic),
                group_id: self.group_id,
                seq,
                attempt,
                key: message.key().map(Arc::from),
                slot,
                slots: Arc::clone(&self.slots),
                answered: false,
            };
            self.buffer.push_back(Delivery::new(
                message,
                Arc::clone(&self.topic),
                attempt,
                Box::new(acker),
            ));
        }
    }

    /// Frees the slots of deliveries past their ack deadline (they are
    /// delivered again; their late answers are ignored) and forgets
    /// answered ones.
    fn expire(&mut self) {
        let now = Instant::now();
        while let Some((at, slot)) = self.leases.front() {
            if *at > now {
                break;
            }
            slot.free(&self.slots);
            self.leases.pop_front();
        }
        if self.leases.len() > 2 * self.options.max_in_flight {
            self.leases
                .retain(|(_, slot)| !slot.freed.load(Ordering::Acquire));
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Answers one delivery through the writer; a delivery dropped unanswered
/// is returned at once (nack without delay).
struct SqliteAcker {
    shared: Arc<Shared>,
    topic: Arc<str>,
    group_id: i64,
    seq: i64,
    attempt: u32,
    key: Option<Arc<str>>,
    slot: Arc<Slot>,
    slots: Arc<Slots>,
    answered: bool,
}

impl SqliteAcker {
    async fn answer(mut self: Box<Self>, nack: Option<Duration>) -> Result<(), BusError> {
        self.answered = true;
        let shared = Arc::clone(&self.shared);
        if shared.closed.is_cancelled() {
            self.slot.free(&self.slots);
            return Err(shared.closed_error("subscriber"));
        }
        let (reply, answer) = oneshot::channel();
        let command = Command::Answer {
            topic: Arc::clone(&self.topic),
            group_id: self.group_id,
            seq: self.seq,
            attempt: self.attempt,
            key: self.key.clone(),
            nack,
            reply: Some(reply),
        };
        // The slot is free once the answer is queued: the member may claim
        // its next delivery in the same commit as this answer (answers are
        // applied before claims).
        let sent = shared.commands.send(command).await;
        self.slot.free(&self.slots);
        if sent.is_err() {
            return Err(shared.closed_error("subscriber"));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(shared.closed_error("subscriber")))
    }
}

impl Acker for SqliteAcker {
    fn ack(self: Box<Self>) -> BoxFuture<'static, Result<(), BusError>> {
        Box::pin(self.answer(None))
    }

    fn nack(self: Box<Self>, delay: Duration) -> BoxFuture<'static, Result<(), BusError>> {
        Box::pin(self.answer(Some(delay)))
    }
}

impl Drop for SqliteAcker {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        self.slot.free(&self.slots);
        if !self.shared.closed.is_cancelled() {
            // If the queue is full the message waits for its ack deadline.
            let _ = self.shared.commands.try_send(Command::Answer {
                topic: Arc::clone(&self.topic),
                group_id: self.group_id,
                seq: self.seq,
                attempt: self.attempt,
                key: self.key.take(),
                nack: Some(Duration::ZERO),
                reply: None,
            });
        }
    }
}
