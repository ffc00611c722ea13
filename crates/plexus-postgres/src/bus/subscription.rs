//! A member of a group: the stream of its deliveries, and the acker that
//! answers one.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures::stream;
use plexus_core::bus::{Acker, BoxFuture, BusError, Delivery, SubscribeOptions, Subscription};
use sqlx::Row;
use time::OffsetDateTime;
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

use super::Shared;
use super::answers::Answer;
use super::row;
use super::setup::millis;
use super::wake::Waker;

/// How soon a member claims again when committed messages wait behind a
/// running transaction (see `claim()`); doubled each time it finds them
/// still held back, up to the poll interval. What holds them back is
/// mostly an ack committing (its transaction began before the publish),
/// a disk flush long: 1-3 claims a round of the bench found that, and at
/// 5 ms the batches behind them were among its slowest.
pub(super) const HELD_BACK_RETRY: Duration = Duration::from_millis(1);

/// Joins the group of `options` (a new private group without one) and
/// returns the member's stream.
pub(crate) async fn open(
    shared: Arc<Shared>,
    topic: &str,
    options: SubscribeOptions,
) -> Result<Subscription, BusError> {
    let Joined {
        group,
        private,
        id: group_id,
        exclusive,
    } = join(&shared, topic, &options).await?;
    if exclusive {
        return Err(BusError::invalid(
            "exclusive",
            format!(
                "group `{group}` of topic `{topic}` is exclusive: its members subscribe with SubscribeOptions::exclusive(), or use another group"
            ),
        ));
    }
    if private {
        shared
            .private_groups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(group_id);
    }
    let topic: Arc<str> = topic.into();
    let waker = shared.wakes.register(&topic, group_id);
    let member = Member {
        shared,
        topic,
        group_id,
        private,
        options,
        waker,
        slots: Arc::new(Slots::default()),
        leases: VecDeque::new(),
        buffer: VecDeque::new(),
        held_back: 0,
        idle_until: None,
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

/// The group a subscription joined.
pub(super) struct Joined {
    pub(super) group: String,
    pub(super) private: bool,
    pub(super) id: i64,
    pub(super) exclusive: bool,
}

/// Joins (or makes) the group of `options` on `topic`, a new private one
/// without a name.
pub(super) async fn join(
    shared: &Shared,
    topic: &str,
    options: &SubscribeOptions,
) -> Result<Joined, BusError> {
    let (group, private) = match &options.group {
        Some(group) if group.chars().any(char::is_control) => {
            return Err(BusError::invalid(
                "group",
                "a group name has no control characters",
            ));
        }
        Some(group) => (group.clone(), false),
        None => (format!("~private-{}", uuid::Uuid::now_v7()), true),
    };
    let earliest = options.start == plexus_core::bus::StartFrom::Earliest;
    let (id, exclusive) = sqlx::query_as(&shared.sql.join)
        .bind(topic)
        .bind(&group)
        .bind(private)
        .bind(earliest)
        .fetch_one(&shared.pool)
        .await
        .map_err(|e| {
            shared.failed(
                &format!("joining group `{group}` of topic `{topic}`"),
                e,
                "subscriber",
            )
        })?;
    Ok(Joined {
        group,
        private,
        id,
        exclusive,
    })
}

/// The member's unanswered deliveries, counted against `max_in_flight`.
#[derive(Debug, Default)]
struct Slots {
    held: AtomicUsize,
    /// Woken when a slot is freed.
    freed: Notify,
    /// Set when a slot's end may have made a message claimable (a nack, a
    /// drop, an expired lease, the ack of a message with a key, which
    /// releases the next of its key): a member that found nothing to
    /// claim claims again.
    recheck: AtomicBool,
}

/// One delivery's place among the member's unanswered ones: freed by its
/// answer, its drop, or its ack deadline, whichever comes first.
#[derive(Debug, Default)]
struct Slot {
    freed: AtomicBool,
}

impl Slot {
    /// Frees the slot; `recheck` when the answer may have made a message
    /// claimable (see [`Slots::recheck`]).
    fn free(&self, slots: &Slots, recheck: bool) {
        if !self.freed.swap(true, Ordering::AcqRel) {
            if recheck {
                slots.recheck.store(true, Ordering::Release);
            }
            slots.held.fetch_sub(1, Ordering::AcqRel);
            slots.freed.notify_waiters();
        }
    }
}

/// What a claim brought.
enum Claimed {
    /// Deliveries; empty when every row leased was not a valid message
    /// (those are parked). `full`: as many as the claim asked for (more
    /// may wait).
    Some {
        deliveries: Vec<Delivery>,
        full: bool,
    },
    /// Nothing; claim again no later than this.
    Nothing { again: Option<Duration> },
}

/// One subscription's place in its group; a private group is removed when
/// the subscription is dropped.
struct Member {
    shared: Arc<Shared>,
    topic: Arc<str>,
    group_id: i64,
    private: bool,
    options: SubscribeOptions,
    waker: Waker,
    slots: Arc<Slots>,
    /// Held slots by ack deadline (every lease of a member has the same
    /// deadline length, so this is in deadline order).
    leases: VecDeque<(Instant, Arc<Slot>)>,
    /// Claimed deliveries not yet yielded.
    buffer: VecDeque<Delivery>,
    /// Claims in a row that found messages held back.
    held_back: u32,
    /// Set when the last claim took all there was: the member claims
    /// again on a wake-up, an answer that may have made a message
    /// claimable, or at this moment (a falling-due message, a held-back
    /// retry, the poll interval), not whenever a slot is freed.
    idle_until: Option<Instant>,
}

impl Drop for Member {
    fn drop(&mut self) {
        if !self.private || self.shared.closed.is_cancelled() {
            return;
        }
        self.shared.forget_private(self.group_id);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (pool, sql, group) = (
                self.shared.pool.clone(),
                Arc::clone(&self.shared.sql),
                self.group_id,
            );
            runtime.spawn(async move {
                if let Err(error) = sqlx::query(&sql.leave).bind(group).execute(&pool).await {
                    tracing::debug!(%error, group, "removing a private group failed; retention removes it later");
                }
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
            let slots = Arc::clone(&self.slots);
            let freed = slots.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            let held = self.slots.held.load(Ordering::Acquire);
            // A member busy with most of its room claims once a quarter of
            // it is free again (claims take a group lock: few large ones
            // beat many small ones).
            if held >= max || (held > 0 && max - held < max.div_ceil(4)) {
                // Wait for an answer, or for the first ack deadline.
                let deadline = self.leases.front().map(|(at, _)| *at);
                tokio::select! {
                    () = &mut freed => {}
                    () = sleep_until(deadline) => {}
                    () = self.shared.closed.cancelled() => return None,
                }
                continue;
            }
            let recheck = self.slots.recheck.swap(false, Ordering::AcqRel);
            if recheck || self.idle_until.is_none_or(|at| at <= Instant::now()) {
                let closed = self.shared.closed.clone();
                let claimed = tokio::select! {
                    claimed = self.claim(max - held) => claimed,
                    () = closed.cancelled() => return None,
                };
                let poll = self.shared.config.poll_interval;
                match claimed {
                    Ok(Claimed::Some { deliveries, full }) => {
                        self.buffer.extend(deliveries);
                        self.idle_until = (!full).then(|| Instant::now() + poll);
                        continue;
                    }
                    Ok(Claimed::Nothing { again }) => {
                        let wait = again.map_or(poll, |again| again.min(poll));
                        self.idle_until = Some(Instant::now() + wait);
                    }
                    Err(_) if self.shared.closed.is_cancelled() => return None,
                    Err(error) => return Some(Err(error)),
                }
            }
            // Waits for a wake-up only while idle, so that one goes to a
            // member free to claim at once. None is lost meanwhile: one
            // sent while no member waits is kept for the next to wait.
            let notify = Arc::clone(&self.waker.notify);
            let woken = notify.notified();
            let deadline = self.leases.front().map(|(at, _)| *at);
            tokio::select! {
                () = woken => self.idle_until = None,
                // An answer: claims again if it set `recheck`.
                () = &mut freed => {}
                () = sleep_until(self.idle_until) => {}
                () = sleep_until(deadline) => {}
                () = self.shared.closed.cancelled() => return None,
            }
        }
    }

    async fn claim(&mut self, max: usize) -> Result<Claimed, BusError> {
        let shared = Arc::clone(&self.shared);
        // The claim runs in a task of its own, so that a member dropped
        // mid-claim does not leave the statement running on the server
        // with the bus believing it idle: closing waits for it (see
        // `Shared::claims`) before handing the bus's leases back.
        let running = Arc::clone(&shared.claims).read_owned().await;
        let (pool, sql, owner) = (
            shared.pool.clone(),
            Arc::clone(&shared.sql),
            shared.owner.clone(),
        );
        let (group, max) = (self.group_id, i32::try_from(max).unwrap_or(i32::MAX));
        let deadline = millis(lease(self.options.ack_deadline));
        let window = i32::try_from(shared.config.group_window).unwrap_or(i32::MAX);
        let claimed = tokio::spawn(async move {
            let rows = sqlx::query(&sql.claim)
                .bind(group)
                .bind(owner)
                .bind(max)
                .bind(deadline)
                .bind(window)
                .fetch_all(&pool)
                .await;
            drop(running);
            rows
        })
        .await
        .map_err(|e| {
            BusError::backend(
                shared.name.as_ref(),
                format!("claiming messages of topic `{}` failed: {e}", self.topic),
            )
        })?;
        let rows = claimed.map_err(|e| {
                if let sqlx::Error::Database(db) = &e
                    && db.code().as_deref() == Some("PXGON")
                {
                    return BusError::backend(
                        shared.name.as_ref(),
                        format!(
                            "the subscription's group on topic `{}` was removed (a private group unseen for longer than PostgresConfig::private_group_expiry); subscribe again",
                            self.topic
                        ),
                    );
                }
                shared.failed(
                    &format!("claiming messages of topic `{}`", self.topic),
                    e,
                    "subscriber",
                )
            })?;
        if let [only] = rows.as_slice()
            && only
                .try_get::<Option<i64>, _>("seq")
                .ok()
                .flatten()
                .is_none()
        {
            if only.try_get::<i32, _>("attempt").unwrap_or(0) == 1 {
                let again = HELD_BACK_RETRY.saturating_mul(1 << self.held_back.min(16));
                self.held_back += 1;
                return Ok(Claimed::Nothing { again: Some(again) });
            }
            self.held_back = 0;
            let due: Option<OffsetDateTime> = only.try_get("time").ok().flatten();
            let again = due.map(|due| {
                let wait = due - OffsetDateTime::now_utc();
                Duration::try_from(wait).unwrap_or(Duration::ZERO)
            });
            return Ok(Claimed::Nothing { again });
        }
        self.held_back = 0;
        let full = rows.len() >= usize::try_from(max).unwrap_or(usize::MAX);
        if full {
            // More may wait: another member takes them meanwhile.
            self.waker.pass_on();
        }
        let deadline = Instant::now() + self.options.ack_deadline;
        let mut deliveries = Vec::with_capacity(rows.len());
        for claimed in &rows {
            let (seq, attempt, message) = match row::decode(claimed) {
                Ok(decoded) => decoded,
                Err((seq, reason)) => {
                    self.park(seq, &reason).await;
                    continue;
                }
            };
            let slot = Arc::new(Slot::default());
            self.slots.held.fetch_add(1, Ordering::AcqRel);
            self.leases.push_back((deadline, Arc::clone(&slot)));
            let acker = PostgresAcker {
                shared: Arc::clone(&self.shared),
                group: self.group_id,
                seq,
                attempt: i32::try_from(attempt).unwrap_or(i32::MAX),
                slot,
                slots: Arc::clone(&self.slots),
                keyed: message.key().is_some(),
                answered: false,
            };
            deliveries.push(Delivery::new(
                message,
                Arc::clone(&self.topic),
                attempt,
                Box::new(acker),
            ));
        }
        Ok(Claimed::Some { deliveries, full })
    }

    /// Sets a stored row that is not a valid message aside (it stays
    /// pending, never due, until someone repairs it and sets its `due`),
    /// so that it does not stop the group.
    async fn park(&self, seq: i64, reason: &str) {
        tracing::error!(
            topic = %self.topic,
            group = self.group_id,
            seq,
            reason,
            "a stored message is not a valid plexus message; it is parked (pending.due = 'infinity')"
        );
        let parked = sqlx::query(&self.shared.sql.park)
            .bind(self.group_id)
            .bind(seq)
            .execute(&self.shared.pool)
            .await;
        if let Err(error) = parked {
            tracing::warn!(%error, seq, "parking an invalid message failed; it comes back at its ack deadline");
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
            // Its message falls due again.
            slot.free(&self.slots, true);
            self.leases.pop_front();
        }
        if self.leases.len() > 2 * self.options.max_in_flight {
            self.leases
                .retain(|(_, slot)| !slot.freed.load(Ordering::Acquire));
        }
    }
}

/// How long the server leases a delivery: the ack deadline, plus a tenth
/// of it (at most a second) for the time the claim takes to reach the
/// member, so that a delivery never comes back before the deadline the
/// member counts from its arrival.
fn lease(ack_deadline: Duration) -> Duration {
    ack_deadline + (ack_deadline / 10).min(Duration::from_secs(1))
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Answers one delivery through the bus's answering task; a delivery
/// dropped unanswered is returned at once (nack without delay).
struct PostgresAcker {
    shared: Arc<Shared>,
    group: i64,
    seq: i64,
    attempt: i32,
    slot: Arc<Slot>,
    slots: Arc<Slots>,
    /// The message has a partition key (its ack releases the next).
    keyed: bool,
    answered: bool,
}

impl PostgresAcker {
    fn answer_of(
        &self,
        nack: Option<Duration>,
    ) -> (Answer, oneshot::Receiver<Result<(), BusError>>) {
        let (reply, answered) = oneshot::channel();
        let answer = Answer::new(self.group, self.seq, self.attempt, nack, Some(reply));
        (answer, answered)
    }

    async fn answer(mut self: Box<Self>, nack: Option<Duration>) -> Result<(), BusError> {
        self.answered = true;
        let shared = Arc::clone(&self.shared);
        if shared.closed.is_cancelled() {
            self.slot.free(&self.slots, false);
            return Err(shared.closed_error("subscriber"));
        }
        let (answer, answered) = self.answer_of(nack);
        let outcome = match shared.answers.send(answer).await {
            Ok(()) => answered
                .await
                .unwrap_or_else(|_| Err(shared.closed_error("subscriber"))),
            Err(_) => Err(shared.closed_error("subscriber")),
        };
        // Freed once the answer is recorded, so that the member's next
        // claim sees it (the next message of the key, a nack's due time).
        self.slot.free(&self.slots, nack.is_some() || self.keyed);
        outcome
    }
}

impl Acker for PostgresAcker {
    fn ack(self: Box<Self>) -> BoxFuture<'static, Result<(), BusError>> {
        Box::pin(self.answer(None))
    }

    fn nack(self: Box<Self>, delay: Duration) -> BoxFuture<'static, Result<(), BusError>> {
        Box::pin(self.answer(Some(delay)))
    }
}

impl Drop for PostgresAcker {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        self.slot.free(&self.slots, true);
        if !self.shared.closed.is_cancelled() {
            // If the queue is full the message waits for its ack deadline.
            let _ = self.shared.answers.try_send(Answer::new(
                self.group,
                self.seq,
                self.attempt,
                Some(Duration::ZERO),
                None,
            ));
        }
    }
}
