//! The holder of an exclusive group ([`SubscribeOptions::exclusive`]),
//! for backends that keep a topic as an ordered log and a group as a
//! position in it: the backend reads and writes ([`ExclusiveSource`]);
//! this keeps the deliveries in order, moves the position as acks come
//! and starts a new round when one is nacked.
//!
//! - **Reading.** Up to the room left of `max_in_flight`, at most
//!   [`READ_MAX`] at once; a short read waits for the source's wake-up or
//!   the time it names.
//! - **Answers.** An ack marks its delivery; once every delivery before
//!   it is acked too, the position moves past it, written at most every
//!   [`WRITE_EVERY`] and when the holder stops (lost in a crash, the
//!   position steps back and messages come again). An ack returns once
//!   sent to the holder, which records every answer sent before it writes
//!   the position or lets the group go; a nack once its round began.
//! - **Rounds.** A nack, a delivery dropped unanswered or one past its ack
//!   deadline starts a new round: reading resumes after the last message
//!   acked in order (after the nack's delay), so the order holds;
//!   deliveries of the old round not yet taken from the stream are
//!   dropped and late answers to them ignored.

mod acker;
mod window;

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use tokio::sync::mpsc;
use tokio::time::Instant;

use self::acker::Answer;
use self::window::{Ready, Window};
use super::{BoxFuture, BusError, Delivery, SubscribeOptions, Subscription};
use crate::Message;

/// How often at most the holder writes the group's position while acks
/// come.
pub const WRITE_EVERY: Duration = Duration::from_millis(10);

/// The most messages one read asks for: about a consumer's batch (a
/// relay's is 100), so that each read, and the decoding of its rows,
/// stays short and the holder's task does not hold up the consumer's
/// between its batches. Measured with a relay from PostgreSQL to NATS on
/// 2 cores (`plexus bench outbox`, three pairs of alternating runs):
/// relay / raw publish 0.64 to 0.70 reading up to 500 at once, 0.74 to
/// 0.83 reading up to 100; 50 was no better than 100.
pub const READ_MAX: usize = 100;

/// The error for a group some shared members took messages of: it
/// cannot be held exclusively.
pub fn taken_by_shared_members(group: &str, topic: &str) -> BusError {
    BusError::invalid(
        "exclusive",
        format!(
            "group `{group}` of topic `{topic}` has messages its shared members took; an exclusive subscription needs a group whose members all subscribe exclusively"
        ),
    )
}

/// What one read brought.
pub struct Read<P> {
    /// The messages after the position read from, in order, each with its
    /// position; `Err` for a stored row that is not a valid message (the
    /// source logs it; the group passes over it).
    pub messages: Vec<(P, Result<Message, String>)>,
    /// When fewer than asked came: read again no later than this from
    /// now, wake-up or not.
    pub again_in: Duration,
}

/// A backend's side of an exclusive group, while this member holds it.
pub trait ExclusiveSource: Send {
    /// A place in the topic's order.
    type Position: Clone + PartialEq + Send + Sync + 'static;

    /// Up to `max` messages after `after`.
    fn read<'a>(
        &'a mut self,
        after: &'a Self::Position,
        max: usize,
    ) -> BoxFuture<'a, Result<Read<Self::Position>, BusError>>;

    /// Stores the group's position: every message up to `to` is done.
    fn write<'a>(&'a mut self, to: &'a Self::Position) -> BoxFuture<'a, Result<(), BusError>>;

    /// Ends when the topic may have new messages.
    fn woken(&mut self) -> BoxFuture<'_, ()>;
}

/// The holder's end of an exclusive subscription's stream.
pub struct Feed {
    topic: Arc<str>,
    backend: Arc<str>,
    options: SubscribeOptions,
    out: mpsc::Sender<Result<Ready, BusError>>,
    answers: mpsc::Sender<Answer>,
    answered: mpsc::Receiver<Answer>,
    round: Arc<AtomicU64>,
    yielded: Arc<AtomicU64>,
}

/// An exclusive subscription's stream and the feed its holder runs.
pub fn channel(
    topic: impl Into<Arc<str>>,
    backend: impl Into<Arc<str>>,
    options: SubscribeOptions,
) -> (Subscription, Feed) {
    let (out, taken) = mpsc::channel(options.max_in_flight.max(1));
    let (answers, answered) = mpsc::channel(options.max_in_flight.saturating_mul(2).max(2));
    let round = Arc::new(AtomicU64::new(0));
    let yielded = Arc::new(AtomicU64::new(0));
    let stream = Taken {
        taken,
        round: Arc::clone(&round),
        yielded: Arc::clone(&yielded),
    };
    let feed = Feed {
        topic: topic.into(),
        backend: backend.into(),
        options,
        out,
        answers,
        answered,
        round,
        yielded,
    };
    (Subscription::new(stream), feed)
}

impl Feed {
    /// Ends when the subscription was dropped.
    pub async fn dropped(&self) {
        self.out.closed().await;
    }

    /// Ends the stream with `error`.
    pub async fn fail(self, error: BusError) {
        let _ = self.out.send(Err(error)).await;
    }

    /// Feeds the stream from `source`, starting after `start`, until the
    /// subscription is dropped or `closed` ends (then `Ok`, the position
    /// written) or the source fails.
    pub async fn run<S: ExclusiveSource>(
        &mut self,
        source: &mut S,
        start: S::Position,
        closed: impl Future<Output = ()>,
    ) -> Result<(), BusError> {
        let mut window = Window::new(self, start.clone());
        let mut stored = start;
        let mut written_at = Instant::now();
        let mut idle_until: Option<Instant> = None;
        let out = self.out.clone();
        tokio::pin!(closed);
        'feed: loop {
            while let Ok(answer) = self.answered.try_recv() {
                window.answer(answer);
            }
            window.expire();
            let now = Instant::now();
            if window.acked_to != stored && now >= written_at + WRITE_EVERY {
                source.write(&window.acked_to).await?;
                stored = window.acked_to.clone();
                written_at = Instant::now();
            }
            let room = self.options.max_in_flight.saturating_sub(window.len());
            if window.ready.is_empty()
                && room > 0
                && window.paused_until.is_none_or(|at| at <= now)
                && idle_until.is_none_or(|at| at <= now)
            {
                window.paused_until = None;
                let asked = room.min(READ_MAX);
                let after = window.read_to.clone();
                let read = source.read(&after, asked).await?;
                let full = read.messages.len() >= asked;
                for (at, message) in read.messages {
                    window.push(at, message);
                }
                idle_until = (!full).then(|| Instant::now() + read.again_in);
                continue;
            }
            // Hand on what is ready while the stream has room, without a
            // wait (and its timers) per delivery; once all of it went, the
            // top of the loop reads more if the room allows.
            let mut handed = false;
            while !window.ready.is_empty() {
                match out.try_reserve() {
                    Ok(permit) => {
                        if let Some(next) = window.ready.pop_front() {
                            permit.send(Ok(next));
                            handed = true;
                        }
                    }
                    Err(mpsc::error::TrySendError::Full(())) => break,
                    Err(mpsc::error::TrySendError::Closed(())) => break 'feed,
                }
            }
            if handed && window.ready.is_empty() {
                continue;
            }
            let write_due = (window.acked_to != stored).then_some(written_at + WRITE_EVERY);
            let wake_after = idle_until.or(window.paused_until);
            tokio::select! {
                biased;
                () = &mut closed => break,
                () = out.closed() => break,
                Some(answer) = self.answered.recv() => window.answer(answer),
                permit = out.reserve(), if !window.ready.is_empty() => match permit {
                    Ok(permit) => {
                        if let Some(next) = window.ready.pop_front() {
                            permit.send(Ok(next));
                        }
                    }
                    Err(_) => break,
                },
                () = source.woken(), if idle_until.is_some() => idle_until = None,
                () = sleep_until(wake_after) => {}
                () = sleep_until(window.first_deadline()) => {}
                () = sleep_until(write_due) => {}
            }
        }
        // Answers sent before the end count (an ack returns once sent);
        // later ones are refused.
        self.answered.close();
        while let Ok(answer) = self.answered.try_recv() {
            window.answer(answer);
        }
        if window.acked_to != stored {
            // What was acked since the last write, before letting go.
            source.write(&window.acked_to).await?;
        }
        Ok(())
    }
}

/// The stream: deliveries of the current round (those of a round a nack
/// or a deadline ended come again, and are dropped here).
struct Taken {
    taken: mpsc::Receiver<Result<Ready, BusError>>,
    round: Arc<AtomicU64>,
    yielded: Arc<AtomicU64>,
}

impl Stream for Taken {
    type Item = Result<Delivery, BusError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match self.taken.poll_recv(cx) {
                Poll::Ready(Some(Ok((round, number, delivery)))) => {
                    if round != self.round.load(Ordering::Acquire) {
                        continue;
                    }
                    self.yielded.fetch_max(number + 1, Ordering::AcqRel);
                    return Poll::Ready(Some(Ok(delivery)));
                }
                Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(error))),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
