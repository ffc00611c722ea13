//! One consumer group's view of a topic: which messages it has passed,
//! which are out with a member, waiting for a redelivery or free to go.
//!
//! Keys are not stored here: the caller passes each message's key (it
//! reads it from the topic's log), so passing and acknowledging a message
//! allocates nothing. Every step of a delivery's life (pass, take, ack) is
//! O(1) for messages without keys: the unacknowledged messages are a
//! window indexed by offset, fresh messages wait in log order, and a
//! deadline is forgotten lazily (an entry whose delivery was answered is
//! skipped when it comes up, and the heap is compacted as it grows).

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, VecDeque};

// A fast hasher: these maps are looked up for every delivery and answer.
use foldhash::HashMap;

use tokio::time::Instant;

/// A message the group has taken from the log and not yet acknowledged.
#[derive(Debug)]
struct Unacked {
    /// Deliveries so far.
    attempt: u32,
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting: free (in `fresh` or `returned`) when it is the first
    /// unacked message of its key, else behind that one.
    Ready,
    /// Waiting for a nack's delay (its due time is in `delayed`).
    Delayed,
    /// Out with a member, answered through `token` (its deadline is in
    /// `deadlines`).
    InFlight { member: u64, token: u64 },
}

/// What [`Group::take`] hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Lease {
    pub(super) offset: u64,
    pub(super) attempt: u32,
    pub(super) token: u64,
}

/// A delivery's deadline: (due, offset, token), soonest first.
type Due = Reverse<(Instant, u64, u64)>;

/// A group's position and unanswered messages.
#[derive(Debug)]
pub(super) struct Group {
    /// The next log offset this group has never taken.
    pub(super) cursor: u64,
    /// Offset of `unacked[0]`; `unacked_base + unacked.len() == cursor`.
    unacked_base: u64,
    /// The passed messages from `unacked_base` on, `None` once
    /// acknowledged; the front is always `Some` (or the window empty).
    unacked: VecDeque<Option<Unacked>>,
    /// How many of `unacked` are `Some`.
    unacked_count: usize,
    /// Free to deliver now, in log order: passed messages that were the
    /// first unacked one of their key (or have no key) when passed.
    fresh: VecDeque<u64>,
    /// Free to deliver now, out of log order: redeliveries and messages
    /// their key's earlier message made free. Taken before a later fresh
    /// one, so the lowest offset always goes first.
    returned: BTreeSet<u64>,
    delayed: BTreeSet<(Instant, u64)>,
    /// Deadlines of deliveries; entries of answered deliveries linger
    /// until they come up or the heap is compacted.
    deadlines: BinaryHeap<Due>,
    /// Unacked offsets per key, in order: only the first may be out.
    keys: HashMap<Box<str>, VecDeque<u64>>,
    /// Deliveries out with each member, and each member's bound.
    in_flight: HashMap<u64, usize>,
    in_flight_total: usize,
    limits: HashMap<u64, usize>,
    next_token: u64,
}

impl Group {
    pub(super) fn new(cursor: u64) -> Self {
        Group {
            cursor,
            unacked_base: cursor,
            unacked: VecDeque::new(),
            unacked_count: 0,
            fresh: VecDeque::new(),
            returned: BTreeSet::new(),
            delayed: BTreeSet::new(),
            deadlines: BinaryHeap::new(),
            keys: HashMap::default(),
            in_flight: HashMap::default(),
            in_flight_total: 0,
            limits: HashMap::default(),
            next_token: 1,
        }
    }

    /// Registers a member holding at most `limit` deliveries.
    pub(super) fn join(&mut self, member: u64, limit: usize) {
        self.limits.insert(member, limit);
    }

    /// Forgets a member that left (its deliveries come back on their own).
    pub(super) fn leave_member(&mut self, member: u64) {
        self.limits.remove(&member);
    }

    /// The lowest offset the group still needs (the log may drop what is
    /// below it).
    pub(super) fn low_watermark(&self) -> u64 {
        self.unacked_base
    }

    /// How many messages the group has taken and not acknowledged.
    pub(super) fn unacked_len(&self) -> usize {
        self.unacked_count
    }

    fn entry(&self, offset: u64) -> Option<&Unacked> {
        let index = usize::try_from(offset.checked_sub(self.unacked_base)?).ok()?;
        self.unacked.get(index)?.as_ref()
    }

    fn entry_mut(&mut self, offset: u64) -> Option<&mut Unacked> {
        let index = usize::try_from(offset.checked_sub(self.unacked_base)?).ok()?;
        self.unacked.get_mut(index)?.as_mut()
    }

    /// Forgets the acknowledged message at `offset`, and slides the window
    /// past every acknowledged message at its front.
    fn remove(&mut self, offset: u64) {
        let Some(index) = offset
            .checked_sub(self.unacked_base)
            .and_then(|i| usize::try_from(i).ok())
        else {
            return;
        };
        if let Some(slot) = self.unacked.get_mut(index)
            && slot.take().is_some()
        {
            self.unacked_count -= 1;
        }
        while let Some(None) = self.unacked.front() {
            self.unacked.pop_front();
            self.unacked_base += 1;
        }
    }

    /// Takes the message at `offset` (the cursor), of `key`, from the log.
    pub(super) fn pass(&mut self, offset: u64, key: Option<&str>) {
        debug_assert_eq!(offset, self.cursor);
        debug_assert_eq!(self.unacked_base + self.unacked.len() as u64, offset);
        self.cursor += 1;
        self.unacked.push_back(Some(Unacked {
            attempt: 0,
            state: State::Ready,
        }));
        self.unacked_count += 1;
        let Some(key) = key else {
            self.fresh.push_back(offset);
            return;
        };
        match self.keys.get_mut(key) {
            // Behind an earlier unacked message of its key, it waits
            // until that one is acknowledged.
            Some(offsets) => offsets.push_back(offset),
            None => {
                self.keys.insert(key.into(), VecDeque::from([offset]));
                self.fresh.push_back(offset);
            }
        }
    }

    /// Moves due delayed messages and expired deliveries back to free
    /// (they are first of their key: only firsts are delivered).
    pub(super) fn release_due(&mut self, now: Instant) {
        while let Some(&(at, offset)) = self.delayed.first() {
            if at > now {
                break;
            }
            self.delayed.pop_first();
            if let Some(entry) = self.entry_mut(offset) {
                entry.state = State::Ready;
                self.returned.insert(offset);
            }
        }
        while let Some(&Reverse((at, offset, token))) = self.deadlines.peek() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            let Some(entry) = self.entry_mut(offset) else {
                continue;
            };
            let State::InFlight {
                member, token: t, ..
            } = entry.state
            else {
                continue;
            };
            if t != token {
                continue;
            }
            entry.state = State::Ready;
            self.returned.insert(offset);
            self.leave(member);
        }
    }

    /// Counts one delivery of `member` as answered or expired.
    fn leave(&mut self, member: u64) {
        if let Some(count) = self.in_flight.get_mut(&member) {
            *count = count.saturating_sub(1);
            self.in_flight_total = self.in_flight_total.saturating_sub(1);
            if *count == 0 {
                self.in_flight.remove(&member);
            }
        }
    }

    /// Deliveries out with `member`.
    pub(super) fn in_flight_of(&self, member: u64) -> usize {
        self.in_flight.get(&member).copied().unwrap_or(0)
    }

    /// The lowest offset free to deliver, removed from its queue.
    fn pop_free(&mut self) -> Option<u64> {
        match (self.fresh.front(), self.returned.first()) {
            (Some(&fresh), Some(&returned)) if returned < fresh => self.returned.pop_first(),
            (Some(_), _) => self.fresh.pop_front(),
            (None, _) => self.returned.pop_first(),
        }
    }

    /// The first message free to deliver, out with `member` until
    /// `deadline`.
    pub(super) fn take(&mut self, member: u64, deadline: Instant) -> Option<Lease> {
        let offset = self.pop_free()?;
        let token = self.next_token;
        self.next_token += 1;
        let entry = self.entry_mut(offset).expect("free messages are unacked");
        entry.attempt += 1;
        entry.state = State::InFlight { member, token };
        let attempt = entry.attempt;
        self.deadlines.push(Reverse((deadline, offset, token)));
        *self.in_flight.entry(member).or_default() += 1;
        self.in_flight_total += 1;
        self.compact_deadlines();
        Some(Lease {
            offset,
            attempt,
            token,
        })
    }

    /// Drops the entries of answered deliveries once they outnumber the
    /// live ones (amortised O(1) per delivery; bounds the heap to about
    /// twice the deliveries out).
    fn compact_deadlines(&mut self) {
        if self.deadlines.len() <= 2 * self.in_flight_total + 64 {
            return;
        }
        let mut deadlines = std::mem::take(&mut self.deadlines).into_vec();
        deadlines.retain(|&Reverse((_, offset, token))| self.current_token(offset) == Some(token));
        self.deadlines = BinaryHeap::from(deadlines);
    }

    /// The token of the delivery out with a member for `offset`, if any.
    fn current_token(&self, offset: u64) -> Option<u64> {
        match self.entry(offset)?.state {
            State::InFlight { token, .. } => Some(token),
            _ => None,
        }
    }

    /// The member of `lease`, if it is still the current delivery of its
    /// message.
    fn current(&self, lease: Lease) -> Option<u64> {
        match self.entry(lease.offset)?.state {
            State::InFlight { member, token, .. } if token == lease.token => Some(member),
            _ => None,
        }
    }

    /// Acknowledges `lease` (a message of `key`). `None` when the lease is
    /// no longer current (its deadline passed or it was answered already);
    /// else whether members may now find something to take (the key's
    /// next message became free, or the member was at its bound).
    pub(super) fn ack(&mut self, lease: Lease, key: Option<&str>) -> Option<bool> {
        let member = self.current(lease)?;
        let at_limit = self
            .limits
            .get(&member)
            .is_some_and(|&limit| self.in_flight_of(member) >= limit);
        self.leave(member);
        self.remove(lease.offset);
        let mut freed = false;
        if let Some(key) = key
            && let Some(offsets) = self.keys.get_mut(key)
        {
            debug_assert_eq!(offsets.front(), Some(&lease.offset));
            offsets.pop_front();
            match offsets.front().copied() {
                None => {
                    self.keys.remove(key);
                }
                // The key's next message is free now, if it is ready.
                Some(next) => {
                    if self.entry(next).is_some_and(|e| e.state == State::Ready) {
                        freed = self.returned.insert(next);
                    }
                }
            }
        }
        Some(freed || at_limit)
    }

    /// Puts `lease` back, free again at `at`; `false` when it is no longer
    /// current.
    pub(super) fn nack(&mut self, lease: Lease, at: Instant, now: Instant) -> bool {
        let Some(member) = self.current(lease) else {
            return false;
        };
        self.leave(member);
        let entry = self
            .entry_mut(lease.offset)
            .expect("current leases are unacked");
        if at <= now {
            entry.state = State::Ready;
            self.returned.insert(lease.offset);
        } else {
            entry.state = State::Delayed;
            self.delayed.insert((at, lease.offset));
        }
        true
    }

    /// When the next delayed message or delivery deadline falls due
    /// (deadlines of answered deliveries are dropped on the way).
    pub(super) fn next_due(&mut self) -> Option<Instant> {
        while let Some(&Reverse((_, offset, token))) = self.deadlines.peek() {
            if self.current_token(offset) == Some(token) {
                break;
            }
            self.deadlines.pop();
        }
        let delayed = self.delayed.first().map(|d| d.0);
        let deadline = self.deadlines.peek().map(|d| d.0.0);
        match (delayed, deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::Group;

    #[test]
    fn a_key_waits_for_its_earlier_message_while_other_keys_go() {
        let now = Instant::now();
        let later = now + Duration::from_secs(30);
        let mut group = Group::new(0);
        group.join(1, 10);
        group.join(2, 10);
        group.pass(0, Some("a"));
        group.pass(1, Some("a"));
        group.pass(2, Some("b"));
        let first = group.take(1, later).unwrap();
        assert_eq!(first.offset, 0);
        let second = group.take(1, later).unwrap();
        assert_eq!(second.offset, 2, "key b goes while key a waits");
        assert_eq!(group.take(1, later), None, "offset 1 waits for offset 0");
        assert!(group.nack(first, now, now));
        let again = group.take(2, later).unwrap();
        assert_eq!((again.offset, again.attempt), (0, 2), "redelivered first");
        assert_eq!(
            group.ack(again, Some("a")),
            Some(true),
            "offset 1 is free now"
        );
        assert_eq!(group.take(2, later).unwrap().offset, 1);
        assert_eq!(
            group.ack(first, Some("a")),
            None,
            "a superseded lease is ignored"
        );
    }

    #[test]
    fn an_expired_delivery_is_ready_again_and_its_lease_is_void() {
        let now = Instant::now();
        let mut group = Group::new(5);
        group.join(1, 1);
        group.pass(5, None);
        let lease = group.take(1, now + Duration::from_millis(10)).unwrap();
        assert_eq!(group.in_flight_of(1), 1);
        group.release_due(now + Duration::from_millis(11));
        assert_eq!(group.in_flight_of(1), 0);
        assert_eq!(group.ack(lease, None), None);
        let again = group.take(2, now + Duration::from_secs(1)).unwrap();
        assert_eq!((again.offset, again.attempt), (5, 2));
        assert_eq!(group.low_watermark(), 5);
        assert_eq!(group.ack(again, None), Some(false), "nothing new to take");
        assert_eq!(group.low_watermark(), 6);
    }

    #[test]
    fn an_ack_by_a_member_at_its_bound_wakes_it() {
        let now = Instant::now();
        let mut group = Group::new(0);
        group.join(1, 1);
        group.pass(0, None);
        group.pass(1, None);
        let lease = group.take(1, now + Duration::from_secs(1)).unwrap();
        assert_eq!(group.ack(lease, None), Some(true));
    }

    #[test]
    fn answered_deliveries_leave_no_deadline_behind() {
        let now = Instant::now();
        let mut group = Group::new(0);
        group.join(1, 8);
        for offset in 0..10_000 {
            group.pass(offset, None);
            let lease = group.take(1, now + Duration::from_secs(30)).unwrap();
            assert_eq!(group.ack(lease, None), Some(false));
        }
        assert!(
            group.deadlines.len() <= 64 + 2,
            "{} deadlines kept for 0 deliveries out",
            group.deadlines.len()
        );
        assert_eq!(group.next_due(), None, "no delivery is out");
        assert_eq!((group.low_watermark(), group.unacked_len()), (10_000, 0));
        group.pass(10_000, None);
        group.pass(10_001, None);
        let first = group.take(1, now + Duration::from_secs(5)).unwrap();
        let second = group.take(1, now + Duration::from_secs(9)).unwrap();
        assert_eq!(group.ack(first, None), Some(false));
        assert_eq!(
            group.next_due(),
            Some(now + Duration::from_secs(9)),
            "the answered delivery's deadline is skipped"
        );
        assert_eq!(group.low_watermark(), 10_001, "held by the one still out");
        group.release_due(now + Duration::from_secs(10));
        let again = group.take(1, now + Duration::from_secs(20)).unwrap();
        assert_eq!((again.offset, again.attempt), (second.offset, 2));
    }
}
