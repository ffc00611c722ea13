//! A member of a group: the stream of its deliveries, and the acker that
//! answers one.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::stream;
use plexus_core::Message;
use plexus_core::bus::{Acker, BoxFuture, BusError, Delivery, SubscribeOptions, Subscription};
use tokio::time::Instant;

use super::group::Lease;
use super::{Inner, NAME, SharedTopic, lock};

/// Deliveries a member takes from its group under one lock, at most.
const TAKE_AT_ONCE: usize = 64;

/// One subscription's place in its group; leaving the group when dropped
/// if the group is its own.
struct Member {
    inner: Arc<Inner>,
    topic: SharedTopic,
    /// The topic's wake-up (the same for the topic's whole life).
    changed: Arc<tokio::sync::Notify>,
    topic_name: Arc<str>,
    group: Arc<str>,
    private: bool,
    id: u64,
    options: SubscribeOptions,
    /// Deliveries taken and not yet yielded (out with this member, their
    /// ack deadline running; dropped with the stream, they go back).
    taken: VecDeque<Delivery>,
    /// Shared by the ackers of this member's deliveries.
    answers: Arc<Answers>,
}

impl Drop for Member {
    fn drop(&mut self) {
        self.taken.clear();
        let mut topic = lock(&self.topic);
        if self.private {
            topic.groups.remove(&*self.group);
            let removed = topic.truncate();
            topic.changed.notify_waiters();
            topic.room.notify_waiters();
            drop(topic);
            drop(removed);
        } else if let Some(group) = topic.groups.get_mut(&*self.group) {
            group.leave_member(self.id);
        }
    }
}

pub(super) fn open(
    inner: Arc<Inner>,
    topic: SharedTopic,
    topic_name: String,
    group: String,
    private: bool,
    id: u64,
    options: SubscribeOptions,
) -> Subscription {
    let changed = Arc::clone(&lock(&topic).changed);
    let group: Arc<str> = group.into();
    let answers = Arc::new(Answers {
        inner: Arc::clone(&inner),
        topic: Arc::clone(&topic),
        group: Arc::clone(&group),
    });
    let member = Member {
        inner,
        topic,
        changed,
        topic_name: topic_name.into(),
        group,
        private,
        id,
        options,
        taken: VecDeque::new(),
        answers,
    };
    Subscription::new(stream::unfold(member, |mut member| async move {
        let delivery = next(&mut member).await?;
        Some((Ok(delivery), member))
    }))
}

/// Waits for the member's next delivery; `None` once the bus is closed.
async fn next(member: &mut Member) -> Option<Delivery> {
    loop {
        if let Some(delivery) = member.taken.pop_front() {
            return Some(delivery);
        }
        if member.inner.closed.load(Ordering::Acquire) {
            return None;
        }
        // Armed before looking, so a change made after the look wakes us.
        let changed = Arc::clone(&member.changed);
        let notified = changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let due = {
            let mut topic = lock(&member.topic);
            let now = Instant::now();
            let deadline = now + member.options.ack_deadline;
            let group = topic.groups.get_mut(&*member.group)?;
            group.release_due(now);
            let free = member
                .options
                .max_in_flight
                .saturating_sub(group.in_flight_of(member.id));
            for _ in 0..free.min(TAKE_AT_ONCE) {
                let Some((lease, message)) = topic.take(&member.group, member.id, deadline) else {
                    break;
                };
                member.taken.push_back(delivery(member, lease, message));
            }
            if !member.taken.is_empty() {
                continue;
            }
            topic
                .groups
                .get_mut(&*member.group)
                .and_then(|g| g.next_due())
        };
        if member.inner.closed.load(Ordering::Acquire) {
            return None;
        }
        match due {
            Some(at) => {
                tokio::select! {
                    () = &mut notified => {}
                    () = tokio::time::sleep_until(at) => {}
                }
            }
            None => notified.await,
        }
    }
}

fn delivery(member: &Member, lease: Lease, message: Message) -> Delivery {
    let acker = MemoryAcker {
        answers: Arc::clone(&member.answers),
        lease,
        answered: false,
    };
    Delivery::new(
        message,
        Arc::clone(&member.topic_name),
        lease.attempt,
        Box::new(acker),
    )
}

/// What a member's ackers need, behind one `Arc` (one reference count
/// to change per delivery, not three).
struct Answers {
    inner: Arc<Inner>,
    topic: SharedTopic,
    group: Arc<str>,
}

/// Answers one delivery; a delivery dropped unanswered is put back at
/// once.
struct MemoryAcker {
    answers: Arc<Answers>,
    lease: Lease,
    answered: bool,
}

impl MemoryAcker {
    fn answer(&mut self, ack: bool, delay: Duration) -> Result<(), BusError> {
        self.answered = true;
        let answers = &*self.answers;
        if answers.inner.closed.load(Ordering::Acquire) {
            return Err(BusError::Closed {
                backend: NAME.to_owned(),
                what: "subscriber",
            });
        }
        let mut topic = lock(&answers.topic);
        if ack {
            let removed = topic.ack(&answers.group, self.lease);
            drop(topic);
            drop(removed);
            return Ok(());
        }
        let Some(group) = topic.groups.get_mut(&*answers.group) else {
            return Ok(());
        };
        let now = Instant::now();
        if group.nack(self.lease, now + delay, now) {
            topic.changed.notify_waiters();
        }
        Ok(())
    }
}

impl Acker for MemoryAcker {
    fn ack(mut self: Box<Self>) -> BoxFuture<'static, Result<(), BusError>> {
        let result = self.answer(true, Duration::ZERO);
        Box::pin(async move { result })
    }

    fn nack(mut self: Box<Self>, delay: Duration) -> BoxFuture<'static, Result<(), BusError>> {
        let result = self.answer(false, delay);
        Box::pin(async move { result })
    }
}

impl Drop for MemoryAcker {
    fn drop(&mut self) {
        if !self.answered {
            let _ = self.answer(false, Duration::ZERO);
        }
    }
}
