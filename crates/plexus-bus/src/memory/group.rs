//! One consumer group's view of a topic: which messages it has passed,
//! which are out with a member, waiting for a redelivery or free to go.
//!
//! Keys are not stored here: the caller passes each message's key (it
//! reads it from the topic's log), so passing and acknowledging a message
//! allocates nothing.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

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
    /// Waiting: in `ready` when it is the first unacked message of its
    /// key, else behind that one.
    Ready,
    /// Waiting for a nack's delay (in `delayed`).
    Delayed(Instant),
    /// Out with a member, answered through `token` (in `deadlines`).
    InFlight {
        member: u64,
        token: u64,
        deadline: Instant,
    },
}

/// What [`Group::take`] hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Lease {
    pub(super) offset: u64,
    pub(super) attempt: u32,
    pub(super) token: u64,
}

/// A group's position and unanswered messages.
#[derive(Debug)]
pub(super) struct Group {
    /// The next log offset this group has never taken.
    pub(super) cursor: u64,
    unacked: BTreeMap<u64, Unacked>,
    /// Free to deliver now: ready entries that are the first unacked
    /// message of their key (or have no key).
    ready: BTreeSet<u64>,
    delayed: BTreeSet<(Instant, u64)>,
    deadlines: BTreeSet<(Instant, u64)>,
    /// Unacked offsets per key, in order: only the first may be out.
    keys: HashMap<Box<str>, VecDeque<u64>>,
    /// Deliveries out with each member, and each member's bound.
    in_flight: HashMap<u64, usize>,
    limits: HashMap<u64, usize>,
    next_token: u64,
}

impl Group {
    pub(super) fn new(cursor: u64) -> Self {
        Group {
            cursor,
            unacked: BTreeMap::new(),
            ready: BTreeSet::new(),
            delayed: BTreeSet::new(),
            deadlines: BTreeSet::new(),
            keys: HashMap::default(),
            in_flight: HashMap::default(),
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
        self.unacked
            .keys()
            .next()
            .copied()
            .unwrap_or(self.cursor)
            .min(self.cursor)
    }

    /// How many messages the group has taken and not acknowledged.
    pub(super) fn unacked_len(&self) -> usize {
        self.unacked.len()
    }

    /// Takes the message at `offset` (the cursor), of `key`, from the log.
    pub(super) fn pass(&mut self, offset: u64, key: Option<&str>) {
        debug_assert_eq!(offset, self.cursor);
        self.cursor += 1;
        self.unacked.insert(
            offset,
            Unacked {
                attempt: 0,
                state: State::Ready,
            },
        );
        let Some(key) = key else {
            self.ready.insert(offset);
            return;
        };
        match self.keys.get_mut(key) {
            // Behind an earlier unacked message of its key, it waits out
            // of `ready` until that one is acknowledged.
            Some(offsets) => offsets.push_back(offset),
            None => {
                self.keys.insert(key.into(), VecDeque::from([offset]));
                self.ready.insert(offset);
            }
        }
    }

    /// Moves due delayed messages and expired deliveries back to ready
    /// (they are first of their key: only firsts are delivered).
    pub(super) fn release_due(&mut self, now: Instant) {
        while let Some(&(at, offset)) = self.delayed.first() {
            if at > now {
                break;
            }
            self.delayed.pop_first();
            if let Some(entry) = self.unacked.get_mut(&offset) {
                entry.state = State::Ready;
                self.ready.insert(offset);
            }
        }
        while let Some(&(at, offset)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some(entry) = self.unacked.get_mut(&offset)
                && let State::InFlight { member, .. } = entry.state
            {
                entry.state = State::Ready;
                self.ready.insert(offset);
                Self::leave(&mut self.in_flight, member);
            }
        }
    }

    fn leave(in_flight: &mut HashMap<u64, usize>, member: u64) {
        if let Some(count) = in_flight.get_mut(&member) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                in_flight.remove(&member);
            }
        }
    }

    /// Deliveries out with `member`.
    pub(super) fn in_flight_of(&self, member: u64) -> usize {
        self.in_flight.get(&member).copied().unwrap_or(0)
    }

    /// The first message free to deliver, out with `member` until
    /// `deadline`.
    pub(super) fn take(&mut self, member: u64, deadline: Instant) -> Option<Lease> {
        let offset = self.ready.pop_first()?;
        let token = self.next_token;
        self.next_token += 1;
        let entry = self
            .unacked
            .get_mut(&offset)
            .expect("ready entries are unacked");
        entry.attempt += 1;
        entry.state = State::InFlight {
            member,
            token,
            deadline,
        };
        self.deadlines.insert((deadline, offset));
        *self.in_flight.entry(member).or_default() += 1;
        Some(Lease {
            offset,
            attempt: entry.attempt,
            token,
        })
    }

    /// Whether `lease` is still the current delivery of its message.
    fn current(&self, lease: Lease) -> Option<(u64, Instant)> {
        match self.unacked.get(&lease.offset)?.state {
            State::InFlight {
                member,
                token,
                deadline,
            } if token == lease.token => Some((member, deadline)),
            _ => None,
        }
    }

    /// Acknowledges `lease` (a message of `key`). `None` when the lease is
    /// no longer current (its deadline passed or it was answered already);
    /// else whether members may now find something to take (the key's
    /// next message became free, or the member was at its bound).
    pub(super) fn ack(&mut self, lease: Lease, key: Option<&str>) -> Option<bool> {
        let (member, deadline) = self.current(lease)?;
        self.deadlines.remove(&(deadline, lease.offset));
        let at_limit = self
            .limits
            .get(&member)
            .is_some_and(|&limit| self.in_flight_of(member) >= limit);
        Self::leave(&mut self.in_flight, member);
        self.unacked.remove(&lease.offset);
        let mut freed = false;
        if let Some(key) = key
            && let Some(offsets) = self.keys.get_mut(key)
        {
            debug_assert_eq!(offsets.front(), Some(&lease.offset));
            offsets.pop_front();
            match offsets.front() {
                None => {
                    self.keys.remove(key);
                }
                // The key's next message is free now, if it is ready.
                Some(&next) => {
                    if self
                        .unacked
                        .get(&next)
                        .is_some_and(|e| e.state == State::Ready)
                    {
                        freed = self.ready.insert(next);
                    }
                }
            }
        }
        Some(freed || at_limit)
    }

    /// Puts `lease` back, free again at `at`; `false` when it is no longer
    /// current.
    pub(super) fn nack(&mut self, lease: Lease, at: Instant, now: Instant) -> bool {
        let Some((member, deadline)) = self.current(lease) else {
            return false;
        };
        self.deadlines.remove(&(deadline, lease.offset));
        Self::leave(&mut self.in_flight, member);
        let entry = self
            .unacked
            .get_mut(&lease.offset)
            .expect("current leases are unacked");
        if at <= now {
            entry.state = State::Ready;
            self.ready.insert(lease.offset);
        } else {
            entry.state = State::Delayed(at);
            self.delayed.insert((at, lease.offset));
        }
        true
    }

    /// When the next delayed message or delivery deadline falls due.
    pub(super) fn next_due(&self) -> Option<Instant> {
        let delayed = self.delayed.first().map(|d| d.0);
        let deadline = self.deadlines.first().map(|d| d.0);
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
}
