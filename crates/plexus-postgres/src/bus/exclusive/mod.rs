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
//!   read; a wake-up (LISTEN/NOTIFY), the poll interval or, when
//!   committed messages wait behind a running transaction, a short retry
//!   brings the next read. The rounds, acks and nacks are
//!   [`plexus_core::bus::exclusive`]'s; the cursor writes do not wait for
//!   the disk (lost in a crash, the position steps back and messages come
//!   again).

use std::sync::Arc;

use plexus_core::bus::exclusive::{self, ExclusiveSource, Feed, Read};
use plexus_core::bus::{BoxFuture, BusError, SubscribeOptions, Subscription};
use sqlx::{Connection as _, PgConnection, Row as _};
use tokio::sync::Notify;

use super::Shared;
use super::row;
use super::subscription::{HELD_BACK_RETRY, Joined, join};
use super::wake::Waker;

/// Joins `options`' group of `topic` as an exclusive member; its stream
/// stands by until the member holds the group.
pub(crate) async fn open(
    shared: Arc<Shared>,
    topic: &str,
    options: SubscribeOptions,
) -> Result<Subscription, BusError> {
    let Joined {
        group,
        id: group_id,
        ..
    } = join(&shared, topic, &options).await?;
    let connection = connect(&shared).await?;
    let topic: Arc<str> = topic.into();
    let waker = shared.wakes.register(&topic, group_id);
    let (subscription, feed) =
        exclusive::channel(Arc::clone(&topic), Arc::clone(&shared.name), options);
    let source = Source {
        token: format!("{}/{}", shared.owner, uuid::Uuid::now_v7()),
        shared,
        topic,
        group_name: group,
        group: group_id,
        connection,
        waker,
        held_back: 0,
    };
    tokio::spawn(source.run(feed));
    Ok(subscription)
}

/// A connection of the member's own, for the group's lock (which lives as
/// long as its session) and everything the holder runs: taken from the
/// bus's pool (an idle one saves connecting) and detached from it, so
/// that the pool neither counts it nor hands it to anyone else.
async fn connect(shared: &Shared) -> Result<PgConnection, BusError> {
    let mut connection = shared
        .pool
        .acquire()
        .await
        .map_err(|e| shared.failed("taking an exclusive member's connection", e, "subscriber"))?
        .detach();
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
    /// The `xid8` (below 2^63 for as long as PostgreSQL runs).
    xid: i64,
    seq: i64,
}

/// The member: on stand-by for the group's lock, then holding the group.
struct Source {
    shared: Arc<Shared>,
    topic: Arc<str>,
    group_name: String,
    group: i64,
    /// The member's name in `groups.holder`.
    token: String,
    connection: PgConnection,
    waker: Waker,
    /// Short reads in a row that found messages held back.
    held_back: u32,
}

impl Source {
    async fn run(mut self, mut feed: Feed) {
        let closed = self.shared.closed.clone();
        let outcome = match self.stand_by(&feed).await {
            Ok(Some(start)) => feed.run(&mut self, start, closed.cancelled()).await,
            Ok(None) => Ok(()),
            Err(error) => Err(error),
        };
        if let Err(error) = outcome {
            feed.fail(error).await;
        }
        // The lock goes with the session.
        let _ = sqlx::query(&self.shared.sql.let_go)
            .bind(self.group)
            .bind(&self.token)
            .execute(&mut self.connection)
            .await;
        let _ = self.connection.close().await;
    }

    /// Waits for the group's lock, then takes the group: its cursor, or
    /// `None` when the subscription or the bus went first.
    async fn stand_by(&mut self, feed: &Feed) -> Result<Option<Position>, BusError> {
        let lock = sqlx::query("SELECT pg_advisory_lock(hashtext($1), $2)")
            .bind(format!("{}.exclusive", self.shared.sql.schema))
            .bind(i32::try_from(self.group % i64::from(i32::MAX)).unwrap_or(0));
        let closed = self.shared.closed.clone();
        tokio::select! {
            locked = lock.execute(&mut self.connection) => {
                locked.map_err(|e| failed(&self.shared, &self.group_name, &self.topic, "waiting for the group's lock", e))?;
            }
            () = closed.cancelled() => return Ok(None),
            () = feed.dropped() => return Ok(None),
        }
        let taken: Option<(i64, i64)> = sqlx::query_as(&self.shared.sql.hold)
            .bind(self.group)
            .bind(&self.token)
            .fetch_optional(&mut self.connection)
            .await
            .map_err(|e| {
                failed(
                    &self.shared,
                    &self.group_name,
                    &self.topic,
                    "taking the group",
                    e,
                )
            })?;
        let Some((xid, seq)) = taken else {
            return Err(exclusive::taken_by_shared_members(
                &self.group_name,
                &self.topic,
            ));
        };
        tracing::debug!(topic = %self.topic, group = %self.group_name, "holding an exclusive group");
        Ok(Some(Position { xid, seq }))
    }

    async fn read_after(
        &mut self,
        after: &Position,
        max: usize,
    ) -> Result<Read<Position>, BusError> {
        let asked = i32::try_from(max).unwrap_or(i32::MAX);
        let rows = sqlx::query(&self.shared.sql.read_after)
            .bind(self.topic.as_ref())
            .bind(after.xid)
            .bind(after.seq)
            .bind(asked)
            .fetch_all(&mut self.connection)
            .await
            .map_err(|e| self.failed("reading", e))?;
        let mut messages = Vec::with_capacity(rows.len());
        for row in &rows {
            let seq: i64 = row
                .try_get(row::SEQ)
                .map_err(|e| self.failed("reading", e))?;
            let xid: i64 = row
                .try_get(row::NEXT)
                .map_err(|e| self.failed("reading", e))?;
            let message = row::decode(row).map(|(_, _, message)| message).map_err(|(_, reason)| {
                tracing::error!(topic = %self.topic, group = %self.group_name, seq, %reason, "a stored message is not a valid plexus message; the exclusive group passes over it");
                reason
            });
            messages.push((Position { xid, seq }, message));
        }
        let poll = self.shared.config.poll_interval;
        if messages.len() >= max {
            self.held_back = 0;
            return Ok(Read {
                messages,
                again_in: poll,
            });
        }
        if !messages.is_empty() {
            // Handed on at once; the next read (soon) tells whether more
            // wait behind a running transaction.
            return Ok(Read {
                messages,
                again_in: HELD_BACK_RETRY,
            });
        }
        let behind: bool = sqlx::query_scalar(&self.shared.sql.held_back)
            .bind(self.topic.as_ref())
            .bind(after.xid)
            .bind(after.seq)
            .fetch_one(&mut self.connection)
            .await
            .map_err(|e| self.failed("reading", e))?;
        let again_in = if behind {
            let wait = HELD_BACK_RETRY.saturating_mul(1 << self.held_back.min(16));
            self.held_back += 1;
            wait.min(poll)
        } else {
            self.held_back = 0;
            poll
        };
        Ok(Read { messages, again_in })
    }

    async fn advance(&mut self, to: &Position) -> Result<(), BusError> {
        let written = sqlx::query(&self.shared.sql.advance)
            .bind(self.group)
            .bind(to.xid)
            .bind(to.seq)
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
        Ok(())
    }

    fn failed(&self, what: &str, error: sqlx::Error) -> BusError {
        failed(&self.shared, &self.group_name, &self.topic, what, error)
    }
}

impl ExclusiveSource for Source {
    type Position = Position;

    fn read<'a>(
        &'a mut self,
        after: &'a Position,
        max: usize,
    ) -> BoxFuture<'a, Result<Read<Position>, BusError>> {
        Box::pin(self.read_after(after, max))
    }

    fn write<'a>(&'a mut self, to: &'a Position) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(self.advance(to))
    }

    fn woken(&mut self) -> BoxFuture<'_, ()> {
        let notify: Arc<Notify> = Arc::clone(&self.waker.notify);
        Box::pin(async move { notify.notified().await })
    }
}

fn failed(shared: &Shared, group: &str, topic: &str, what: &str, error: sqlx::Error) -> BusError {
    shared.failed(
        &format!("{what} (exclusive group `{group}` of topic `{topic}`)"),
        error,
        "subscriber",
    )
}
