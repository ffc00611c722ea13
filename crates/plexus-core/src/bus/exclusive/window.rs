//! The holder's bookkeeping: the deliveries of the current round in
//! order, which of them are acked, and where the group stands.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Feed;
use super::acker::{Answer, ExclusiveAcker};
use crate::Message;
use crate::bus::Delivery;

/// A delivery of the current round, until it is acked in order.
struct Entry<P> {
    at: P,
    acked: bool,
    deadline: Instant,
    attempt: u32,
}

/// A read message handed to the stream: its round, its number in the
/// round, the delivery.
pub(crate) type Ready = (u64, u64, Delivery);

/// See the module.
pub(crate) struct Window<P> {
    topic: Arc<str>,
    backend: Arc<str>,
    ack_deadline: Duration,
    answers: mpsc::Sender<Answer>,
    /// The current round, shared with the stream's filter.
    round: Arc<AtomicU64>,
    /// One past the number of the last delivery of the round the stream
    /// yielded (those read but never yielded were not attempts).
    yielded: Arc<AtomicU64>,
    /// Every message up to here is acked.
    pub(crate) acked_to: P,
    /// The last message read.
    pub(crate) read_to: P,
    /// The current round's deliveries from the first not acked in order.
    entries: VecDeque<Entry<P>>,
    /// The number the next delivery of the round gets (the front's is
    /// `next_number - entries.len()`).
    next_number: u64,
    /// Read, not yet handed to the stream.
    pub(crate) ready: VecDeque<Ready>,
    /// Attempts so far of the messages a new round reads again, in the
    /// order it reads them (each leaves as it is read).
    again: VecDeque<(P, u32)>,
    /// A nack's delay: no reads until then.
    pub(crate) paused_until: Option<Instant>,
}

impl<P: Clone + PartialEq> Window<P> {
    /// The window of `feed`'s holder, starting after `start`.
    pub(crate) fn new(feed: &Feed, start: P) -> Self {
        Window {
            topic: Arc::clone(&feed.topic),
            backend: Arc::clone(&feed.backend),
            ack_deadline: feed.options.ack_deadline,
            answers: feed.answers.clone(),
            round: Arc::clone(&feed.round),
            yielded: Arc::clone(&feed.yielded),
            acked_to: start.clone(),
            read_to: start,
            entries: VecDeque::new(),
            next_number: 0,
            ready: VecDeque::new(),
            again: VecDeque::new(),
            paused_until: None,
        }
    }

    /// Deliveries read and not acked in order.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The ack deadline of the first delivery not acked.
    pub(crate) fn first_deadline(&self) -> Option<Instant> {
        self.entries.front().map(|e| e.deadline)
    }

    /// Takes a message read at `at` into the round; one that is not a
    /// valid message (`Err`, which the source logs) is passed over, acked
    /// at once.
    pub(crate) fn push(&mut self, at: P, message: Result<Message, String>) {
        let round = self.round.load(Ordering::Acquire);
        let attempt = match self.again.pop_front() {
            Some((again, tried)) if again == at => tried + 1,
            // Not the message the last round ended on: the rest of the
            // list no longer lines up.
            Some(_) => {
                self.again.clear();
                1
            }
            None => 1,
        };
        let number = self.next_number;
        self.next_number += 1;
        self.read_to = at.clone();
        let deadline = Instant::now() + self.ack_deadline;
        match message {
            Ok(message) => {
                self.entries.push_back(Entry {
                    at,
                    acked: false,
                    deadline,
                    attempt,
                });
                let acker = ExclusiveAcker {
                    answers: self.answers.clone(),
                    round,
                    number,
                    backend: Arc::clone(&self.backend),
                    answered: false,
                };
                let delivery =
                    Delivery::new(message, Arc::clone(&self.topic), attempt, Box::new(acker));
                self.ready.push_back((round, number, delivery));
            }
            Err(_) => {
                self.entries.push_back(Entry {
                    at,
                    acked: true,
                    deadline,
                    attempt,
                });
                self.advance();
            }
        }
    }

    /// Applies an answer and replies to it.
    pub(crate) fn answer(&mut self, answer: Answer) {
        let current = self.round.load(Ordering::Acquire);
        let front = self.next_number - self.entries.len() as u64;
        // An answer of an old round, or of a delivery acked in order
        // already, changes nothing.
        if answer.round == current && answer.number >= front {
            let index = usize::try_from(answer.number - front).unwrap_or(usize::MAX);
            match answer.nack {
                None => {
                    if let Some(entry) = self.entries.get_mut(index) {
                        entry.acked = true;
                    }
                    self.advance();
                }
                Some(delay) => self.new_round(delay),
            }
        }
        if let Some(reply) = answer.reply {
            let _ = reply.send(());
        }
    }

    /// Moves `acked_to` past the deliveries acked in order.
    fn advance(&mut self) {
        while self.entries.front().is_some_and(|e| e.acked) {
            if let Some(entry) = self.entries.pop_front() {
                self.acked_to = entry.at;
            }
        }
    }

    /// Starts a new round if the first delivery not acked is past its ack
    /// deadline.
    pub(crate) fn expire(&mut self) {
        if self.first_deadline().is_some_and(|at| at <= Instant::now()) {
            self.new_round(Duration::ZERO);
        }
    }

    /// A nack, a dropped delivery or an ack deadline: reading starts
    /// again after the last message acked in order, after `delay`.
    fn new_round(&mut self, delay: Duration) {
        self.round.fetch_add(1, Ordering::AcqRel);
        let yielded = self.yielded.swap(0, Ordering::AcqRel);
        let front = self.next_number - self.entries.len() as u64;
        self.again = (front..)
            .zip(&self.entries)
            .map(|(number, entry)| {
                let tried = if number < yielded {
                    entry.attempt
                } else {
                    entry.attempt.saturating_sub(1)
                };
                (entry.at.clone(), tried)
            })
            .collect();
        self.entries.clear();
        self.ready.clear();
        self.next_number = 0;
        self.read_to = self.acked_to.clone();
        self.paused_until = (!delay.is_zero()).then(|| Instant::now() + delay);
    }
}
