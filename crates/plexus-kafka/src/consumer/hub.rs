//! [`Hub`]: the messages one Kafka consumer read and the members of its
//! group on this bus handle share. Each message waits in its partition
//! until acknowledged; a keyed one waits behind the earlier messages of
//! its key (one in flight per key, other keys in parallel); a delivery
//! unanswered past its ack deadline, nacked, or dropped goes back to the
//! front. A partition's commit is its lowest unacknowledged offset, with
//! what was acknowledged past it and the attempts so far in the commit's
//! metadata ([`progress`](super::progress)).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use plexus_core::Message;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::progress::{self, Progress};

/// Names one delivery (one hand-out of a message).
pub(crate) type Token = u64;

/// A partition's commit: offset and metadata.
pub(crate) type Commit = (i32, i64, String);

/// How a delivery was answered.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Answer {
    Ack,
    /// Nacked (or dropped, with zero delay): delivered again after it.
    Nack(Duration),
}

/// A message handed to a member.
pub(crate) struct Taken {
    pub(crate) message: Message,
    pub(crate) attempt: u32,
    pub(crate) token: Token,
}

/// What a rejected answer means.
#[derive(Debug)]
pub(crate) enum Refused {
    /// The delivery expired or its partition went to another consumer;
    /// the message will be delivered again.
    Stale,
    /// The subscriber was closed.
    Closed,
}

pub(crate) struct Hub {
    state: Mutex<State>,
    /// Whether acknowledgements are committed (a group) or only
    /// remembered (a subscription of its own).
    pub(crate) grouped: bool,
    /// The Kafka group (for a group).
    group: Option<Arc<str>>,
    /// Wakes members waiting for a message or for room.
    pub(crate) wake: Notify,
    /// Wakes the timer when an earlier deadline or due time appears.
    pub(crate) timer: Notify,
    /// Wakes the committer.
    pub(crate) commit_wanted: Notify,
    /// The number of the latest finished commit and its result.
    pub(crate) committed: watch::Sender<(u64, Result<(), String>)>,
    /// Signalled on answers while a partition is being revoked.
    answered: Condvar,
    /// Cancelled when the last member left or the bus closed: the
    /// consumer commits and leaves.
    pub(crate) stop: CancellationToken,
    /// Held while a commit is taken and sent, so that commits reach the
    /// broker in the order they were taken (an older one never lands
    /// after a newer one).
    pub(crate) commit_lock: Mutex<()>,
    /// The most messages held before fetching pauses.
    buffer: usize,
}

#[derive(Default)]
struct State {
    parts: HashMap<i32, Part>,
    ready: VecDeque<(i32, i64)>,
    flights: HashMap<Token, Flight>,
    deadlines: BTreeSet<(Instant, Token)>,
    /// Nacked messages: (due, sequence, partition, offset).
    delayed: BTreeSet<(Instant, u64, i32, i64)>,
    members: HashMap<u64, MemberRoom>,
    next_token: Token,
    held: usize,
    commits_started: u64,
    revoking: usize,
}

/// The last commit of each partition a hub of this process gave up, per
/// Kafka group, for the hub that gets the partition next when the broker
/// keeps no commit metadata (tansu 0.6 drops it): within one process, a
/// partition handed from one consumer to another still knows what was
/// acknowledged past its commit and how often its messages were
/// delivered. Bounded: past [`GIVEN_UP_BOUND`] entries it starts over.
static GIVEN_UP: Mutex<Option<GivenUp>> = Mutex::new(None);
/// Per (Kafka group, partition), the last commit given up.
type GivenUp = HashMap<(Arc<str>, i32), Commit>;
const GIVEN_UP_BOUND: usize = 65_536;

fn given_up() -> MutexGuard<'static, Option<GivenUp>> {
    GIVEN_UP.lock().unwrap_or_else(|e| e.into_inner())
}

struct MemberRoom {
    in_flight: usize,
    max: usize,
    ack_deadline: Duration,
}

struct Flight {
    partition: i32,
    offset: i64,
    member: u64,
    deadline: Instant,
}

#[derive(Default)]
struct Part {
    messages: BTreeMap<i64, Stored>,
    /// Per key, its waiting offsets; the head is the one that may be out.
    lanes: HashMap<Arc<str>, VecDeque<i64>>,
    /// Read up to here (exclusive), once known.
    next: Option<i64>,
    progress: Option<Progress>,
    revoking: bool,
    dirty: bool,
}

struct Stored {
    message: Message,
    key: Option<Arc<str>>,
    attempts: u32,
    out: bool,
}

impl Hub {
    /// A hub for Kafka group `group` (`None`: a subscription of its own).
    pub(crate) fn new(group: Option<&str>, buffer: usize, stop: CancellationToken) -> Self {
        Hub {
            state: Mutex::new(State::default()),
            grouped: group.is_some(),
            group: group.map(Arc::from),
            wake: Notify::new(),
            timer: Notify::new(),
            commit_wanted: Notify::new(),
            committed: watch::Sender::new((0, Ok(()))),
            answered: Condvar::new(),
            stop,
            commit_lock: Mutex::new(()),
            buffer: buffer.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds member `id`; false when the hub is stopping (make another).
    pub(crate) fn join(&self, id: u64, max: usize, ack_deadline: Duration) -> bool {
        let mut state = self.lock();
        if self.stop.is_cancelled() {
            return false;
        }
        state.members.insert(
            id,
            MemberRoom {
                in_flight: 0,
                max,
                ack_deadline,
            },
        );
        true
    }

    /// Removes member `id`, its deliveries going back to the front; the
    /// last member leaving stops the hub.
    pub(crate) fn leave(&self, id: u64) {
        let mut state = self.lock();
        state.members.remove(&id);
        let tokens: Vec<Token> = state
            .flights
            .iter()
            .filter(|(_, f)| f.member == id)
            .map(|(t, _)| *t)
            .collect();
        for token in tokens {
            state.requeue(token);
        }
        if state.members.is_empty() {
            self.stop.cancel();
        }
        drop(state);
        self.answered.notify_all();
        self.wake.notify_waiters();
    }

    /// The longest ack deadline of the members (how long a revoke waits
    /// for answers).
    pub(crate) fn longest_deadline(&self) -> Duration {
        let state = self.lock();
        let longest = state.members.values().map(|m| m.ack_deadline).max();
        longest.unwrap_or(Duration::ZERO)
    }

    /// The next message for member `id`, if one is ready and it has room.
    pub(crate) fn take(&self, id: u64) -> Option<Taken> {
        let mut state = self.lock();
        let state = &mut *state;
        let room = state.members.get(&id)?;
        if room.in_flight >= room.max {
            return None;
        }
        let ack_deadline = room.ack_deadline;
        while let Some((partition, offset)) = state.ready.pop_front() {
            let Some(part) = state.parts.get_mut(&partition) else {
                continue;
            };
            if part.revoking {
                continue;
            }
            let Some(stored) = part.messages.get_mut(&offset) else {
                continue;
            };
            if stored.out {
                continue;
            }
            stored.out = true;
            stored.attempts += 1;
            part.dirty = true;
            let token = state.next_token;
            state.next_token += 1;
            let deadline = Instant::now() + ack_deadline;
            state.flights.insert(
                token,
                Flight {
                    partition,
                    offset,
                    member: id,
                    deadline,
                },
            );
            let first_deadline = state.deadlines.first().map(|(d, _)| *d);
            state.deadlines.insert((deadline, token));
            if let Some(room) = state.members.get_mut(&id) {
                room.in_flight += 1;
            }
            if first_deadline.is_none_or(|first| deadline < first) {
                self.timer.notify_one();
            }
            return Some(Taken {
                message: stored.message.clone(),
                attempt: stored.attempts,
                token,
            });
        }
        None
    }

    /// Records the answer to delivery `token`. For an acknowledgement in
    /// a group, the number of the commit that will carry it.
    pub(crate) fn answer(&self, token: Token, answer: Answer) -> Result<Option<u64>, Refused> {
        let mut state = self.lock();
        if self.stop.is_cancelled() {
            return Err(Refused::Closed);
        }
        let Some(flight) = state.flights.remove(&token) else {
            return Err(Refused::Stale);
        };
        state.deadlines.remove(&(flight.deadline, token));
        if let Some(room) = state.members.get_mut(&flight.member) {
            room.in_flight = room.in_flight.saturating_sub(1);
        }
        let ticket = match answer {
            Answer::Ack => {
                state.done(flight.partition, flight.offset);
                if self.grouped {
                    if let Some(part) = state.parts.get_mut(&flight.partition) {
                        part.dirty = true;
                    }
                    self.commit_wanted.notify_one();
                    Some(state.commits_started + 1)
                } else {
                    None
                }
            }
            Answer::Nack(delay) if delay.is_zero() => {
                state.back(flight.partition, flight.offset);
                None
            }
            Answer::Nack(delay) => {
                let due = Instant::now() + delay;
                if let Some(stored) = state.stored(flight.partition, flight.offset) {
                    stored.out = false;
                }
                let first = state.delayed.first().map(|d| d.0);
                state
                    .delayed
                    .insert((due, token, flight.partition, flight.offset));
                if first.is_none_or(|first| due < first) {
                    self.timer.notify_one();
                }
                None
            }
        };
        let revoking = state.revoking > 0;
        drop(state);
        if revoking {
            self.answered.notify_all();
        }
        self.wake.notify_waiters();
        Ok(ticket)
    }

    /// Hands out again what is due: deliveries past their ack deadline,
    /// nacked messages past their delay. Returns the next due time.
    pub(crate) fn expire(&self, now: Instant) -> Option<Instant> {
        let mut state = self.lock();
        let mut woke = false;
        while let Some(&(deadline, token)) = state.deadlines.first() {
            if deadline > now {
                break;
            }
            state.requeue(token);
            woke = true;
        }
        while let Some(&(due, seq, partition, offset)) = state.delayed.first() {
            if due > now {
                break;
            }
            state.delayed.remove(&(due, seq, partition, offset));
            if state.stored(partition, offset).is_some() {
                state.ready.push_front((partition, offset));
            }
            woke = true;
        }
        let next = [
            state.deadlines.first().map(|d| d.0),
            state.delayed.first().map(|d| d.0),
        ]
        .into_iter()
        .flatten()
        .min();
        let revoking = state.revoking > 0;
        drop(state);
        if woke {
            if revoking {
                self.answered.notify_all();
            }
            self.wake.notify_waiters();
        }
        next
    }

    /// Takes partition `partition` on, read from `next` (when known),
    /// with the progress its commit recorded.
    pub(crate) fn assign(&self, partition: i32, next: Option<i64>, progress: Option<Progress>) {
        let kept = self
            .group
            .as_ref()
            .and_then(|group| given_up().as_mut()?.remove(&(Arc::clone(group), partition)));
        let progress = progress.or_else(|| {
            let (_, offset, metadata) = kept?;
            (Some(offset) == next).then(|| Progress::decode(&metadata))?
        });
        let mut state = self.lock();
        state.parts.insert(
            partition,
            Part {
                next,
                progress,
                ..Part::default()
            },
        );
    }

    /// Stores a message read at `offset` (`Err`: a record that is not a
    /// plexus message, skipped and counted done). Returns whether the
    /// hub now holds as much as it may (fetching should pause).
    pub(crate) fn receive(
        &self,
        partition: i32,
        offset: i64,
        message: Result<Message, String>,
    ) -> bool {
        let mut state = self.lock();
        let state = &mut *state;
        let Some(part) = state.parts.get_mut(&partition) else {
            return state.held >= self.buffer;
        };
        if part.revoking || part.next.is_some_and(|next| offset < next) {
            return state.held >= self.buffer;
        }
        part.next = Some(offset + 1);
        let mut attempts = 0;
        if let Some(progress) = &part.progress {
            if progress.done(offset) {
                return state.held >= self.buffer;
            }
            attempts = progress.attempts(offset);
            if progress.passed(offset) {
                part.progress = None;
            }
        }
        let message = match message {
            Ok(message) => message,
            Err(reason) => {
                tracing::error!(
                    partition,
                    offset,
                    %reason,
                    "a record that is not a valid CloudEvent in binary content mode; skipped (never delivered)"
                );
                part.dirty = true;
                return state.held >= self.buffer;
            }
        };
        let key: Option<Arc<str>> = message.key().map(Arc::from);
        let eligible = match &key {
            None => true,
            Some(key) => {
                let lane = part.lanes.entry(Arc::clone(key)).or_default();
                lane.push_back(offset);
                lane.len() == 1
            }
        };
        part.messages.insert(
            offset,
            Stored {
                message,
                key,
                attempts,
                out: false,
            },
        );
        state.held += 1;
        if eligible {
            state.ready.push_back((partition, offset));
            self.wake.notify_waiters();
        }
        state.held >= self.buffer
    }

    /// Whether the hub holds little enough for fetching to resume.
    pub(crate) fn has_room(&self) -> bool {
        self.lock().held < self.buffer / 2
    }

    /// Starts revoking `partitions`: nothing more of them is handed out.
    pub(crate) fn revoke_begin(&self, partitions: &[i32]) {
        let mut state = self.lock();
        for partition in partitions {
            if let Some(part) = state.parts.get_mut(partition) {
                part.revoking = true;
            }
        }
        state.revoking += 1;
    }

    /// Waits (at most `bound`, not at all once the hub stopped) until no
    /// delivery of `partitions` is unanswered.
    pub(crate) fn revoke_wait(&self, partitions: &[i32], bound: Duration) {
        let give_up = std::time::Instant::now() + bound;
        let mut state = self.lock();
        while !self.stop.is_cancelled() {
            let out = state
                .flights
                .values()
                .any(|f| partitions.contains(&f.partition));
            let left = give_up.saturating_duration_since(std::time::Instant::now());
            if !out || left.is_zero() {
                return;
            }
            let waited = left.min(Duration::from_millis(100));
            state = match self.answered.wait_timeout(state, waited) {
                Ok((state, _)) => state,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    /// Takes the commit lock (see [`Hub::commit_lock`]).
    pub(crate) fn commit_guard(&self) -> MutexGuard<'_, ()> {
        self.commit_lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ends revoking `partitions`: forgets them (their unanswered
    /// deliveries become stale) and returns their commits.
    pub(crate) fn revoke_end(&self, partitions: &[i32]) -> Vec<Commit> {
        let mut guard = self.lock();
        let state = &mut *guard;
        state.revoking = state.revoking.saturating_sub(1);
        let mut commits = Vec::new();
        for partition in partitions {
            let Some(part) = state.parts.remove(partition) else {
                continue;
            };
            state.held = state.held.saturating_sub(part.messages.len());
            commits.extend(part.commit(*partition));
            let stale: Vec<Token> = state
                .flights
                .iter()
                .filter(|(_, f)| f.partition == *partition)
                .map(|(t, _)| *t)
                .collect();
            for token in stale {
                if let Some(flight) = state.flights.remove(&token) {
                    state.deadlines.remove(&(flight.deadline, token));
                    if let Some(room) = state.members.get_mut(&flight.member) {
                        room.in_flight = room.in_flight.saturating_sub(1);
                    }
                }
            }
            state.delayed.retain(|d| d.2 != *partition);
            state.ready.retain(|r| r.0 != *partition);
        }
        drop(guard);
        self.wake.notify_waiters();
        self.remember(&commits);
        commits
    }

    /// Remembers `commits` for the next hub of this group in the process
    /// (see [`GIVEN_UP`]).
    pub(crate) fn remember(&self, commits: &[Commit]) {
        let Some(group) = &self.group else {
            return;
        };
        let mut given_up = given_up();
        let given_up = given_up.get_or_insert_with(HashMap::new);
        if given_up.len() + commits.len() > GIVEN_UP_BOUND {
            given_up.clear();
        }
        for commit in commits {
            given_up.insert((Arc::clone(group), commit.0), commit.clone());
        }
    }

    /// Starts a commit: its number and the commits of the partitions
    /// that changed since the last one (`all`: of every partition).
    pub(crate) fn commits(&self, all: bool) -> (u64, Vec<Commit>) {
        let mut state = self.lock();
        state.commits_started += 1;
        let number = state.commits_started;
        let commits = state
            .parts
            .iter_mut()
            .filter(|(_, part)| all || part.dirty)
            .filter_map(|(partition, part)| {
                part.dirty = false;
                part.commit(*partition)
            })
            .collect();
        (number, commits)
    }

    /// Marks `commits` as not committed (a commit failed).
    pub(crate) fn uncommitted(&self, commits: &[Commit]) {
        let mut state = self.lock();
        for (partition, _, _) in commits {
            if let Some(part) = state.parts.get_mut(partition) {
                part.dirty = true;
            }
        }
    }
}

impl State {
    fn stored(&mut self, partition: i32, offset: i64) -> Option<&mut Stored> {
        self.parts.get_mut(&partition)?.messages.get_mut(&offset)
    }

    /// Puts delivery `token` back at the front (its deadline passed or
    /// its member left).
    fn requeue(&mut self, token: Token) {
        let Some(flight) = self.flights.remove(&token) else {
            return;
        };
        self.deadlines.remove(&(flight.deadline, token));
        if let Some(room) = self.members.get_mut(&flight.member) {
            room.in_flight = room.in_flight.saturating_sub(1);
        }
        self.back(flight.partition, flight.offset);
    }

    /// Puts a message that was out back at the front.
    fn back(&mut self, partition: i32, offset: i64) {
        if let Some(stored) = self.stored(partition, offset) {
            stored.out = false;
            self.ready.push_front((partition, offset));
        }
    }

    /// Drops an acknowledged message; the next of its key may go out.
    fn done(&mut self, partition: i32, offset: i64) {
        let Some(part) = self.parts.get_mut(&partition) else {
            return;
        };
        let Some(stored) = part.messages.remove(&offset) else {
            return;
        };
        self.held = self.held.saturating_sub(1);
        let Some(key) = stored.key else {
            return;
        };
        let Some(lane) = part.lanes.get_mut(&key) else {
            return;
        };
        lane.retain(|o| *o != offset);
        match lane.front() {
            Some(&next) => self.ready.push_back((partition, next)),
            None => {
                part.lanes.remove(&key);
            }
        }
    }
}

impl Part {
    /// This partition's commit, once its position is known.
    fn commit(&self, partition: i32) -> Option<Commit> {
        let next = self.next?;
        let offset = self.messages.keys().next().copied().unwrap_or(next);
        let unacked = self.messages.iter().map(|(o, s)| (*o, s.attempts));
        Some((partition, offset, progress::encode(next, unacked)))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use plexus_core::Message;
    use tokio_util::sync::CancellationToken;

    use super::{Answer, Hub};
    use crate::consumer::progress::Progress;

    fn message(n: usize, key: Option<&str>) -> Result<Message, String> {
        let mut builder = Message::builder("t", "/s").id(format!("m{n}"));
        if let Some(key) = key {
            builder = builder.key(key);
        }
        Ok(builder.build().unwrap())
    }

    fn hub() -> Hub {
        let hub = Hub::new(Some("g"), 100, CancellationToken::new());
        hub.assign(0, Some(10), None);
        assert!(hub.join(1, 10, Duration::from_secs(30)));
        hub
    }

    #[tokio::test]
    async fn one_message_per_key_at_a_time_other_keys_in_parallel() {
        let hub = hub();
        for (offset, key) in [(10, "a"), (11, "a"), (12, "b"), (13, "a")] {
            hub.receive(0, offset, message(offset as usize, Some(key)));
        }
        let first = hub.take(1).unwrap();
        let other = hub.take(1).unwrap();
        assert_eq!((first.message.id(), other.message.id()), ("m10", "m12"));
        assert!(hub.take(1).is_none(), "key a waits for m10");
        hub.answer(first.token, Answer::Nack(Duration::ZERO))
            .unwrap();
        let again = hub.take(1).unwrap();
        assert_eq!((again.message.id(), again.attempt), ("m10", 2));
        assert_eq!(hub.answer(again.token, Answer::Ack).unwrap(), Some(1));
        assert_eq!(hub.take(1).unwrap().message.id(), "m11");
        // Committed at the lowest unacknowledged offset, 11; 12 is out.
        let (_, commits) = hub.commits(false);
        assert_eq!(commits, vec![(0, 11, "p1;11;;11-12:1".to_owned())]);
    }

    #[tokio::test]
    async fn acknowledged_progress_is_not_delivered_again() {
        let hub = Hub::new(Some("g"), 100, CancellationToken::new());
        hub.assign(0, None, Progress::decode("p1;13;10,12;10:2"));
        assert!(hub.join(1, 10, Duration::from_secs(30)));
        for offset in 10..14 {
            hub.receive(0, offset, message(offset as usize, None));
        }
        let taken: Vec<_> = std::iter::from_fn(|| hub.take(1))
            .map(|t| (t.message.id().to_owned(), t.attempt))
            .collect();
        assert_eq!(
            taken,
            [
                ("m10".to_owned(), 3),
                ("m12".to_owned(), 1),
                ("m13".to_owned(), 1)
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn unanswered_deliveries_come_back_after_the_deadline() {
        let hub = Hub::new(None, 100, CancellationToken::new());
        hub.assign(0, Some(0), None);
        assert!(hub.join(1, 1, Duration::from_millis(200)));
        hub.receive(0, 0, message(0, None));
        hub.receive(0, 1, message(1, None));
        let held = hub.take(1).unwrap();
        assert!(hub.take(1).is_none(), "max_in_flight 1");
        let start = tokio::time::Instant::now();
        assert!(hub.expire(start).is_some());
        tokio::time::advance(Duration::from_millis(200)).await;
        assert!(hub.expire(tokio::time::Instant::now()).is_none());
        let again = hub.take(1).unwrap();
        assert_eq!((again.message.id(), again.attempt), ("m0", 2));
        assert!(matches!(
            hub.answer(held.token, Answer::Ack),
            Err(super::Refused::Stale)
        ));
        assert_eq!(hub.answer(again.token, Answer::Ack).unwrap(), None);
        assert_eq!(hub.take(1).unwrap().message.id(), "m1");
    }

    #[tokio::test]
    async fn a_revoked_partition_hands_out_nothing_and_commits() {
        let hub = hub();
        hub.receive(0, 10, message(10, None));
        hub.receive(0, 11, message(11, None));
        let out = hub.take(1).unwrap();
        hub.revoke_begin(&[0]);
        assert!(hub.take(1).is_none());
        hub.answer(out.token, Answer::Ack).unwrap();
        hub.revoke_wait(&[0], Duration::from_secs(5));
        assert_eq!(hub.revoke_end(&[0]), vec![(0, 11, "p1;11;;".to_owned())]);
        hub.leave(1);
        assert!(hub.stop.is_cancelled());
    }
}
