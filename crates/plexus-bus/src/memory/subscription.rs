//! A member of a group: the stream of its deliveries, and the acker that
//! answers one.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::stream;
use plexus_core::Message;
use plexus_core::bus::{Acker, BoxFuture, BusError, Delivery, SubscribeOptions, Subscription};
use tokio::time::Instant;

use super::group::Lease;
use super::{Inner, NAME};

/// One subscription's place in its group; leaving the group when dropped
/// if the group is its own.
struct Member {
    inner: Arc<Inner>,
    topic: String,
    group: String,
    private: bool,
    id: u64,
    options: SubscribeOptions,
}

impl Drop for Member {
    fn drop(&mut self) {
        if self.private {
            let mut topics = self.inner.topics();
            if let Some(topic) = topics.get_mut(&self.topic) {
                topic.groups.remove(&self.group);
                topic.truncate();
                topic.changed.notify_waiters();
            }
        }
    }
}

pub(super) fn open(
    inner: Arc<Inner>,
    topic: String,
    group: String,
    private: bool,
    id: u64,
    options: SubscribeOptions,
) -> Subscription {
    let member = Member {
        inner,
        topic,
        group,
        private,
        id,
        options,
    };
    Subscription::new(stream::unfold(member, |member| async move {
        let delivery = next(&member).await?;
        Some((Ok(delivery), member))
    }))
}

/// Waits for the member's next delivery; `None` once the bus is closed.
async fn next(member: &Member) -> Option<Delivery> {
    loop {
        if member.inner.closed.load(Ordering::Acquire) {
            return None;
        }
        let (changed, due) = {
            let mut topics = member.inner.topics();
            let topic = topics.get_mut(&member.topic)?;
            let now = Instant::now();
            let group = topic.groups.get_mut(&member.group)?;
            group.release_due(now);
            if group.in_flight_of(member.id) < member.options.max_in_flight
                && let Some((lease, message)) =
                    topic.take(&member.group, member.id, now + member.options.ack_deadline)
            {
                return Some(delivery(member, lease, message));
            }
            let due = topic.groups.get(&member.group).and_then(|g| g.next_due());
            (Arc::clone(&topic.changed), due)
        };
        let notified = changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if ready_now(member) {
            continue;
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

/// Whether something changed between the look and the wait: checked with
/// the wake-up already armed, so no change is missed.
fn ready_now(member: &Member) -> bool {
    if member.inner.closed.load(Ordering::Acquire) {
        return true;
    }
    let topics = member.inner.topics();
    let Some(topic) = topics.get(&member.topic) else {
        return true;
    };
    let Some(group) = topic.groups.get(&member.group) else {
        return true;
    };
    (group.cursor < topic.end() || group.next_due().is_some_and(|at| at <= Instant::now()))
        && group.in_flight_of(member.id) < member.options.max_in_flight
}

fn delivery(member: &Member, lease: Lease, message: Message) -> Delivery {
    let acker = MemoryAcker {
        inner: Arc::clone(&member.inner),
        topic: member.topic.clone(),
        group: member.group.clone(),
        lease,
        answered: false,
    };
    Delivery::new(
        message,
        member.topic.clone(),
        lease.attempt,
        Box::new(acker),
    )
}

/// Answers one delivery; a delivery dropped unanswered is put back at
/// once.
struct MemoryAcker {
    inner: Arc<Inner>,
    topic: String,
    group: String,
    lease: Lease,
    answered: bool,
}

impl MemoryAcker {
    fn answer(&mut self, ack: bool, delay: Duration) -> Result<(), BusError> {
        self.answered = true;
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(BusError::Closed {
                backend: NAME.to_owned(),
                what: "subscriber",
            });
        }
        let mut topics = self.inner.topics();
        let Some(topic) = topics.get_mut(&self.topic) else {
            return Ok(());
        };
        let Some(group) = topic.groups.get_mut(&self.group) else {
            return Ok(());
        };
        let now = Instant::now();
        let changed = if ack {
            group.ack(self.lease)
        } else {
            group.nack(self.lease, now + delay, now)
        };
        if changed {
            if ack {
                topic.truncate();
            }
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
