//! Exclusive groups ([`SubscribeOptions::exclusive`]): one member at a
//! time holds the group and reads its topic in `(xid, seq)` order, with no
//! pending rows; the group's cursor is its position.
//!
//! - **Holding.** A member opens a connection of its own and takes the
//!   group's advisory lock on it (waiting, on stand-by, while another
//!   holds it), then writes itself as the group's `holder`. The lock goes
//!   with the session, so a member that dies (its process killed, its
//!   connection gone) hands the group over at once; `holder` fences it
//!   should it live on: its cursor writes stop matching.
//! - **Reading.** One statement reads the messages after the last one
//!   read, up to the room left of `max_in_flight`; a wake-up (LISTEN/
//!   NOTIFY), the poll interval or, when committed messages wait behind a
//!   running transaction, a short retry brings the next read.
//! - **Answers.** An ack marks its delivery; once every delivery before
//!   it is acked too, the cursor moves past it, written at most every
//!   [`WRITE_EVERY`] (not waiting for the disk: lost in a crash, the
//!   position steps back and messages come again). A nack, a delivery
//!   dropped unanswered or one past its ack deadline starts a new round:
//!   reading resumes after the last message acked in order (after the
//!   nack's delay), so the order holds; deliveries of the old round not
//!   yet taken from the stream are dropped and late answers to them
//!   ignored.

mod acker;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt as _;
use plexus_core::bus::{BusError, Delivery, SubscribeOptions, Subscription};
use sqlx::{Connection as _, PgConnection, Row as _};
use tokio::sync::mpsc;
use tokio::time::Instant;

use self::acker::{Answer, ExclusiveAcker};
use super::Shared;
use super::row;
use super::subscription::{HELD_BACK_RETRY, group_of, join};
use super::wake::Waker;

/// How often at most the holder writes the group's cursor while acks come.
const WRITE_EVERY: Duration = Duration::from_millis(10);

/// The most messages one read returns.
const READ_MAX: usize = 500;

/// Joins `options`' group of `topic` as an exclusive member; its stream
/// stands by until the member holds the group.
pub(crate) async fn open(
    shared: Arc<Shared>,
    topic: &str,
    options: SubscribeOptions,
) -> Result<Subscription, BusError> {
    let (group, private) = group_of(&options)?;
    let earliest = options.start == plexus_core::bus::StartFrom::Earliest;
    let (group_id, _) = join(&shared, topic, &group, private, earliest).await?;
    let connection = connect(&shared).await?;
    let topic: Arc<str> = topic.into();
    let waker = shared.wakes.register(&topic, group_id);
    let (out, taken) = mpsc::channel(options.max_in_flight);
    let (answers, answered) = mpsc::channel(options.max_in_flight.saturating_mul(2));
    let round = Arc::new(AtomicU64::new(0));
    let yielded = Arc::new(AtomicU64::new(0));
    let holder = Holder {
        token: format!("{}/{}", shared.owner, uuid::Uuid::now_v7()),
        shared,
        topic,
        group_name: group,
        group: group_id,
        options,
        connection,
        waker,
        out,
        answers,
        answered,
        round: Arc::clone(&round),
        yielded: Arc::clone(&yielded),
        acked_to: Position::default(),
        stored: Position::default(),
        read_to: Position::default(),
        window: VecDeque::new(),
        next_number: 0,
        ready: VecDeque::new(),
        idle_until: None,
        paused_until: None,
        held_back: 0,
        written_at: Instant::now(),
        again: Vec::new(),
    };
    tokio::spawn(holder.run());
    let mut taken = taken;
    let stream = futures::stream::poll_fn(move |cx| taken.poll_recv(cx)).filter_map(
        move |item: Result<(u64, u64, Delivery), BusError>| {
            let current = round.load(Ordering::Acquire);
            std::future::ready(match item {
                // Of a round a nack or a deadline ended: it comes again.
                Ok((of, _, _)) if of != current => None,
                Ok((_, number, delivery)) => {
                    yielded.fetch_max(number + 1, Ordering::AcqRel);
                    Some(Ok(delivery))
                }
                Err(error) => Some(Err(error)),
            })
        },
    );
    Ok(Subscription::new(stream))
}

/// A connection of the member's own, for the group's lock (which lives as
/// long as its session) and everything the holder runs.
async fn connect(shared: &Shared) -> Result<PgConnection, BusError> {
    let options = shared.pool.connect_options();
    let connecting = PgConnection::connect_with(&options);
    let mut connection = tokio::time::timeout(shared.config.connect_timeout, connecting)
        .await
        .map_err(|_| {
            BusError::backend(
                shared.name.as_ref(),
                format!(
                    "an exclusive member's connection: no answer within {:?} (PostgresConfig::connect_timeout)",
                    shared.config.connect_timeout
                ),
            )
        })?
        .map_err(|e| shared.failed("opening an exclusive member's connection", e, "subscriber"))?;
    // Its cursor writes need not wait for the disk (lost in a crash, the
    // position steps back and messages come again). Its reads are planned
    // once, for the index in order: a topic's statistics lag its growth,
    // and planned for the values at hand a fresh topic looks empty (a
    // bitmap scan and a sort, several times slower).
    sqlx::query(
        "SELECT set_config('synchronous_commit', 'off', false), \
                set_config('enable_bitmapscan', 'off', false), \
                set_config('plan_cache_mode', 'force_generic_plan', false)",
    )
    .execute(&mut connection)
    .await
    .map_err(|e| {
        shared.failed(
            "setting up an exclusive member's connection",
            e,
            "subscriber",
        )
    })?;
    Ok(connection)
}

/// A place in the group's `(xid, seq)` order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Position {
    /// `xid8` as text.
    xid: String,
    seq: i64,
}

/// A delivery of the current round, until it is acked in order.
struct Entry {
    at: Position,
    acked: bool,
    deadline: Instant,
    attempt: u32,
}

/// The member: on stand-by for the group's lock, then holding the group.
struct Holder {
    shared: Arc<Shared>,
    topic: Arc<str>,
    group_name: String,
    group: i64,
    /// The member's name in `groups.holder`.
    token: String,
    options: SubscribeOptions,
    connection: PgConnection,
    waker: Waker,
    out: mpsc::Sender<Result<(u64, u64, Delivery), BusError>>,
    /// Kept to hand to ackers.
    answers: mpsc::Sender<Answer>,
    answered: mpsc::Receiver<Answer>,
    /// The current round, shared with the stream's filter.
    round: Arc<AtomicU64>,
    /// One past the number of the last delivery of the round the stream
    /// yielded (those read but never yielded were not attempts).
    yielded: Arc<AtomicU64>,
    /// Every message up to here is acked.
    acked_to: Position,
    /// The cursor as last written.
    stored: Position,
    /// The last message read.
    read_to: Position,
    /// The current round's deliveries from the first not acked in order.
    window: VecDeque<Entry>,
    /// The number the next delivery of the round gets (the window's front
    /// is `next_number - window.len()`).
    next_number: u64,
    /// Read, not yet handed to the stream.
    ready: VecDeque<(u64, u64, Delivery)>,
    /// Set after a read that took all there was: reads again on a
    /// wake-up or then.
    idle_until: Option<Instant>,
    /// A nack's delay: no reads until then.
    paused_until: Option<Instant>,
    held_back: u32,
    written_at: Instant,
    /// Attempts of the messages a new round reads again: `(seq, attempt)`
    /// of the last round's unacked deliveries.
    again: Vec<(i64, u32)>,
}

impl Holder {
    async fn run(mut self) {
        let mut outcome = self.stand_by_and_hold().await;
        if outcome.is_ok() && self.acked_to != self.stored {
            // What was acked since the last write, before letting go.
            outcome = self.write().await;
        }
        if let Err(error) = outcome {
            let _ = self.out.send(Err(error)).await;
        }
        // The lock goes with the session.
        let _ = sqlx::query(&self.shared.sql.let_go)
            .bind(self.group)
            .bind(&self.token)
            .execute(&mut self.connection)
            .await;
        let _ = self.connection.close().await;
    }

    async fn stand_by_and_hold(&mut self) -> Result<(), BusError> {
        let lock = sqlx::query("SELECT pg_advisory_lock(hashtext($1), $2)")
            .bind(format!("{}.exclusive", self.shared.sql.schema))
            .bind(i32::try_from(self.group % i64::from(i32::MAX)).unwrap_or(0));
        let closed = self.shared.closed.clone();
        let out = self.out.clone();
        tokio::select! {
            locked = lock.execute(&mut self.connection) => {
                locked.map_err(|e| self.failed("waiting for the group's lock", e))?;
            }
            () = closed.cancelled() => return Ok(()),
            () = out.closed() => return Ok(()),
        }
        let taken: Option<(String, i64)> = sqlx::query_as(&self.shared.sql.hold)
            .bind(self.group)
            .bind(&self.token)
            .fetch_optional(&mut self.connection)
            .await
            .map_err(|e| self.failed("taking the group", e))?;
        let Some((xid, seq)) = taken else {
            return Err(BusError::invalid(
                "exclusive",
                format!(
                    "group `{}` of topic `{}` has messages its shared members took; an exclusive subscription needs a group whose members all subscribe exclusively",
                    self.group_name, self.topic
                ),
            ));
        };
        let at = Position { xid, seq };
        self.acked_to = at.clone();
        self.stored = at.clone();
        self.read_to = at;
        tracing::debug!(topic = %self.topic, group = %self.group_name, "holding an exclusive group");
        self.hold().await
    }

    async fn hold(&mut self) -> Result<(), BusError> {
        let closed = self.shared.closed.clone();
        let out = self.out.clone();
        let notify = Arc::clone(&self.waker.notify);
        loop {
            if closed.is_cancelled() {
                return Ok(());
            }
            while let Ok(answer) = self.answered.try_recv() {
                self.answer(answer);
            }
            self.expire();
            let now = Instant::now();
            let dirty = self.acked_to != self.stored;
            if dirty && now >= self.written_at + WRITE_EVERY {
                self.write().await?;
            }
            let room = self.options.max_in_flight.saturating_sub(self.window.len());
            if self.ready.is_empty()
                && room > 0
                && self.paused_until.is_none_or(|at| at <= now)
                && self.idle_until.is_none_or(|at| at <= now)
            {
                self.paused_until = None;
                self.read(room.min(READ_MAX)).await?;
                continue;
            }
            let dirty = self.acked_to != self.stored;
            let deadline = self.window.iter().find(|e| !e.acked).map(|e| e.deadline);
            tokio::select! {
                biased;
                () = closed.cancelled() => return Ok(()),
                () = out.closed() => return Ok(()),
                Some(answer) = self.answered.recv() => self.answer(answer),
                permit = out.reserve(), if !self.ready.is_empty() => match permit {
                    Ok(permit) => {
                        if let Some(next) = self.ready.pop_front() {
                            permit.send(Ok(next));
                        }
                    }
                    Err(_) => return Ok(()),
                },
                () = notify.notified(), if self.idle_until.is_some() => self.idle_until = None,
                () = sleep_until(self.idle_until.or(self.paused_until)) => {}
                () = sleep_until(deadline) => {}
                () = sleep_until(dirty.then_some(self.written_at + WRITE_EVERY)) => {}
            }
        }
    }

    /// Reads up to `max` messages after the last read into `ready`.
    async fn read(&mut self, max: usize) -> Result<(), BusError> {
        let asked = i32::try_from(max).unwrap_or(i32::MAX);
        let rows = sqlx::query(&self.shared.sql.read_after)
            .bind(self.topic.as_ref())
            .bind(&self.read_to.xid)
            .bind(self.read_to.seq)
            .bind(asked)
            .fetch_all(&mut self.connection)
            .await
            .map_err(|e| self.failed("reading", e))?;
        let round = self.round.load(Ordering::Acquire);
        let deadline = Instant::now() + self.options.ack_deadline;
        let mut got = 0;
        for row in &rows {
            let seq: i64 = row.try_get("seq").map_err(|e| self.failed("reading", e))?;
            got += 1;
            let xid: String = row.try_get("xid").unwrap_or_default();
            let at = Position { xid, seq };
            self.read_to = at.clone();
            let attempt = self
                .again
                .iter()
                .find(|(s, _)| *s == seq)
                .map_or(1, |(_, attempt)| attempt + 1);
            let number = self.next_number;
            self.next_number += 1;
            match row::decode(row) {
                Ok((_, _, message)) => {
                    self.window.push_back(Entry {
                        at,
                        acked: false,
                        deadline,
                        attempt,
                    });
                    let acker = ExclusiveAcker {
                        answers: self.answers.clone(),
                        round,
                        number,
                        backend: Arc::clone(&self.shared.name),
                        answered: false,
                    };
                    let delivery =
                        Delivery::new(message, Arc::clone(&self.topic), attempt, Box::new(acker));
                    self.ready.push_back((round, number, delivery));
                }
                Err((_, reason)) => {
                    // Not a message: passed over (it stays in `messages`
                    // until retention), never redelivered.
                    tracing::error!(topic = %self.topic, group = %self.group_name, seq, reason, "a stored message is not a valid plexus message; the exclusive group passes over it");
                    self.window.push_back(Entry {
                        at,
                        acked: true,
                        deadline,
                        attempt,
                    });
                    self.advance();
                }
            }
        }
        if got == max {
            self.idle_until = None;
            self.held_back = 0;
            return Ok(());
        }
        let behind: bool = sqlx::query_scalar(&self.shared.sql.held_back)
            .bind(self.topic.as_ref())
            .bind(&self.read_to.xid)
            .bind(self.read_to.seq)
            .fetch_one(&mut self.connection)
            .await
            .map_err(|e| self.failed("reading", e))?;
        if behind {
            let wait = HELD_BACK_RETRY.saturating_mul(1 << self.held_back.min(16));
            self.held_back += 1;
            self.idle_until = Some(Instant::now() + wait.min(self.shared.config.poll_interval));
        } else {
            self.held_back = 0;
            self.idle_until = Some(Instant::now() + self.shared.config.poll_interval);
        }
        Ok(())
    }

    fn answer(&mut self, answer: Answer) {
        let current = self.round.load(Ordering::Acquire);
        let front = self.next_number - self.window.len() as u64;
        // An answer of an old round, or of a delivery acked in order
        // already (answered twice is impossible: the acker is consumed).
        if answer.round == current && answer.number >= front {
            let index = usize::try_from(answer.number - front).unwrap_or(usize::MAX);
            match answer.nack {
                None => {
                    if let Some(entry) = self.window.get_mut(index) {
                        entry.acked = true;
                    }
                    self.advance();
                }
                Some(delay) => self.new_round(delay),
            }
        }
        if let Some(reply) = answer.reply {
            let _ = reply.send(Ok(()));
        }
    }

    /// Moves `acked_to` past the deliveries acked in order.
    fn advance(&mut self) {
        while self.window.front().is_some_and(|e| e.acked) {
            if let Some(entry) = self.window.pop_front() {
                self.acked_to = entry.at;
            }
        }
    }

    /// A nack, a dropped delivery or an ack deadline: reading starts
    /// again after the last message acked in order, after `delay`.
    fn new_round(&mut self, delay: Duration) {
        self.round.fetch_add(1, Ordering::AcqRel);
        let yielded = self.yielded.swap(0, Ordering::AcqRel);
        let front = self.next_number - self.window.len() as u64;
        self.again = (front..)
            .zip(&self.window)
            .map(|(number, entry)| {
                let tried = if number < yielded {
                    entry.attempt
                } else {
                    entry.attempt.saturating_sub(1)
                };
                (entry.at.seq, tried)
            })
            .collect();
        self.window.clear();
        self.ready.clear();
        self.next_number = 0;
        self.read_to = self.acked_to.clone();
        self.idle_until = None;
        self.paused_until = (!delay.is_zero()).then(|| Instant::now() + delay);
    }

    /// Starts a new round if the first delivery not acked is past its ack
    /// deadline.
    fn expire(&mut self) {
        let now = Instant::now();
        if self
            .window
            .iter()
            .find(|e| !e.acked)
            .is_some_and(|e| e.deadline <= now)
        {
            self.new_round(Duration::ZERO);
        }
    }

    /// Writes the cursor: every message up to `acked_to` is done.
    async fn write(&mut self) -> Result<(), BusError> {
        let written = sqlx::query(&self.shared.sql.advance)
            .bind(self.group)
            .bind(&self.acked_to.xid)
            .bind(self.acked_to.seq)
            .bind(&self.token)
            .execute(&mut self.connection)
            .await
            .map_err(|e| self.failed("moving the group's cursor", e))?;
        if written.rows_affected() != 1 {
            return Err(BusError::backend(
                self.shared.name.as_ref(),
                format!(
                    "exclusive group `{}` of topic `{}` is held by another member now (this member's session was lost); subscribe again",
                    self.group_name, self.topic
                ),
            ));
        }
        self.stored = self.acked_to.clone();
        self.written_at = Instant::now();
        Ok(())
    }

    fn failed(&self, what: &str, error: sqlx::Error) -> BusError {
        self.shared.failed(
            &format!(
                "{what} (exclusive group `{}` of topic `{}`)",
                self.group_name, self.topic
            ),
            error,
            "subscriber",
        )
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
