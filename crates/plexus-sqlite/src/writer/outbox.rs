//! Moving the outbox's messages into their topics: services'
//! transactions write them to `plexus_outbox` ([`crate::SqliteOutbox`]);
//! the writer moves them, oldest first, when this process's outbox
//! commits ([`Command::Wake`]) and when its poll finds some, written by
//! another process or committed without a wake-up. A backlog moves a
//! batch per transaction, between the commands' transactions.
//!
//! After this process's outbox commits, the writer's next transaction
//! moves its messages before anything else it writes, so that nothing
//! published after the commit overtakes them. When it has nothing else
//! to write, it moves them in a transaction of its own as soon as this
//! process's other writers leave the database free (checked every
//! millisecond from the wake-up), and at the latest
//! [`outbox_delay`](crate::SqliteConfig::outbox_delay) after it. A service that commits transaction after transaction thus has
//! one transaction of the writer move the messages of many of its own,
//! instead of each of its own waiting for one of the writer's.
//!
//! A topic that is full keeps the rest of its messages in the outbox, in
//! order, until its groups catch up; the other topics' messages move on.
//! Held messages are tried again on the poll and on wake-ups.
//! A row that is not a valid message (written by something else) stops
//! its topic, with a warning naming the row, so that nothing after it in
//! that topic overtakes it.
//!
//! [`Command::Wake`]: super::Command::Wake

use std::collections::HashSet;

use plexus_core::Message;
use plexus_core::bus::BusError;
use sqlx::Row;
use tokio::time::{Duration, Instant};

use super::Writer;
use crate::row::{MESSAGE_COLUMNS, decode};

/// How often moving outbox messages that were put off looks whether the
/// database is free.
const CHECK_EVERY: Duration = Duration::from_millis(1);

/// Undecodable rows reported at most before the record of them starts
/// over (each is reported once while recorded).
const REPORTED_MAX: usize = 1024;

/// The outbox's rows the writer has warned about.
#[derive(Default)]
pub(super) struct Reported(HashSet<i64>);

impl Reported {
    /// Whether `rowid` is to be reported now (not reported lately).
    fn first_time(&mut self, rowid: i64) -> bool {
        if self.0.len() >= REPORTED_MAX {
            self.0.clear();
        }
        self.0.insert(rowid)
    }
}

impl Writer {
    /// Inside the open transaction: moves up to
    /// [`outbox_batch`](crate::SqliteConfig::outbox_batch) of the outbox's
    /// messages, oldest first, into their topics, and deletes them from
    /// the outbox. Leaves `outbox_due` set when it read a whole batch and
    /// held nothing back (more may wait).
    pub(super) async fn drain_outbox(&mut self) -> Result<(), BusError> {
        let doing = "moving outbox messages into their topics";
        let limit = i64::try_from(self.config.outbox_batch).unwrap_or(i64::MAX);
        let rows = sqlx::query(&format!(
            "SELECT rowid, {MESSAGE_COLUMNS}, topic FROM plexus_outbox ORDER BY rowid LIMIT ?1"
        ))
        .bind(limit)
        .fetch_all(&mut self.connection)
        .await
        .map_err(|e| self.error(doing, &e))?;
        self.outbox_due = i64::try_from(rows.len()).unwrap_or(i64::MAX) >= limit;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        let last: i64 = last.try_get(0).map_err(|e| self.error(doing, &e))?;
        // Each topic's messages in rowid order; topics in the order of
        // their first message.
        let mut topics: Vec<(String, Vec<i64>, Vec<Message>)> = Vec::new();
        let mut stopped: Vec<String> = Vec::new();
        let mut held = false;
        for row in &rows {
            let rowid: i64 = row.try_get(0).map_err(|e| self.error(doing, &e))?;
            let topic: String = match row.try_get(11) {
                Ok(topic) => topic,
                Err(e) => {
                    // Which topic it holds up is unknown: everything
                    // after it waits.
                    if self.outbox_reported.first_time(rowid) {
                        tracing::warn!(rowid, error = %e, "an outbox row has no readable topic: it and every later row stay in plexus_outbox; delete the row to let them move");
                    }
                    held = true;
                    break;
                }
            };
            if stopped.contains(&topic) {
                held = true;
                continue;
            }
            match decode(row) {
                Ok((_, message)) => match topics.iter_mut().find(|(t, ..)| *t == topic) {
                    Some((_, rowids, messages)) => {
                        rowids.push(rowid);
                        messages.push(message);
                    }
                    None => topics.push((topic, vec![rowid], vec![message])),
                },
                Err(reason) => {
                    if self.outbox_reported.first_time(rowid) {
                        tracing::warn!(rowid, %topic, %reason, "an outbox row is not a valid message: it and the later rows of its topic stay in plexus_outbox; delete the row to let them move");
                    }
                    stopped.push(topic);
                    held = true;
                }
            }
        }
        let mut moved: Vec<i64> = Vec::with_capacity(rows.len());
        for (topic, rowids, messages) in &topics {
            // One batch per message: a topic with room for only some
            // takes those, in order, and refuses the rest.
            let batches: Vec<&[Message]> = messages.chunks(1).collect();
            let results = self.publish(topic, &batches).await?;
            for (rowid, result) in rowids.iter().zip(results) {
                match result {
                    Ok(()) => moved.push(*rowid),
                    Err(_) => {
                        held = true;
                        break;
                    }
                }
            }
        }
        let deleted = if held {
            let rowids = serde_json::to_string(&moved).expect("a list of integers serializes");
            sqlx::query(
                "DELETE FROM plexus_outbox WHERE rowid IN (SELECT value FROM json_each(?1))",
            )
            .bind(rowids)
            .execute(&mut self.connection)
            .await
        } else {
            // Every row up to `last` moved (rows below the first read
            // are gone already).
            sqlx::query("DELETE FROM plexus_outbox WHERE rowid <= ?1")
                .bind(last)
                .execute(&mut self.connection)
                .await
        };
        deleted.map_err(|e| self.error(doing, &e))?;
        if held {
            // The poll or a wake-up tries them again.
            self.outbox_due = false;
        }
        if !self.outbox_due {
            self.outbox_deadline = None;
        }
        Ok(())
    }

    /// This process's outbox committed messages ([`Command::Wake`]): the
    /// next transaction moves them, and if none comes, a transaction of
    /// their own once the database is free ([`outbox_check`]).
    ///
    /// [`Command::Wake`]: super::Command::Wake
    /// [`outbox_check`]: Self::outbox_check
    pub(super) fn outbox_committed(&mut self) {
        self.outbox_due = true;
        if self.outbox_deadline.is_none() {
            let now = Instant::now();
            self.outbox_deadline = Some(now + self.config.outbox_delay);
            self.outbox_next_check = now + CHECK_EVERY;
        }
    }

    /// When moving outbox messages that were put off is to be looked at
    /// again: every millisecond from the first wake-up, at the latest at
    /// their deadline.
    pub(super) fn outbox_check(&self) -> Option<Instant> {
        self.outbox_deadline
            .map(|deadline| deadline.min(self.outbox_next_check))
    }

    /// Moves the outbox's messages in a transaction of its own, unless
    /// this process's other writers hold the database and the deadline
    /// has not passed: then [`outbox_check`](Self::outbox_check) brings
    /// it back. Takes no turn when the outbox is empty (a transaction of
    /// the commands moved them meanwhile).
    pub(super) async fn move_outbox_when_free(&mut self) {
        let Some(deadline) = self.outbox_deadline else {
            return;
        };
        let now = Instant::now();
        if self.turns.busy() && now < deadline {
            self.outbox_next_check = now + CHECK_EVERY;
            return;
        }
        if self.outbox_due && self.outbox_waiting().await {
            self.commit_own().await;
        } else {
            self.outbox_due = false;
        }
        if !self.outbox_due {
            self.outbox_deadline = None;
        }
    }

    /// Whether the outbox holds messages (a read: takes no turn). An
    /// error counts as yes, for the transaction to report.
    async fn outbox_waiting(&mut self) -> bool {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM plexus_outbox)")
            .fetch_one(&mut self.connection)
            .await
            .unwrap_or(true)
    }

    /// On the poll: moves the outbox's messages in a transaction of its
    /// own when it has any (held ones too).
    pub(super) async fn poll_outbox(&mut self) {
        self.outbox_poll = Instant::now() + self.config.poll_interval;
        if self.outbox_waiting().await {
            self.outbox_due = true;
            self.commit_own().await;
        }
    }

    /// A transaction of the writer's own, for what it has to do without
    /// a command (moving outbox messages, returning leases), committed
    /// without waiting for the disk (`synchronous=NORMAL`, then back to
    /// `FULL`): a crash of the machine may undo it, which only leaves the
    /// messages in the outbox to be moved again (and delivered again,
    /// as at-least-once delivery allows) and the leases to expire. A
    /// crash of the process undoes nothing, and the writer's next
    /// durable commit syncs it with its own. Waiting on the disk there
    /// cost a service's transaction that met it half as much again.
    pub(super) async fn commit_own(&mut self) {
        match sqlx::query("PRAGMA synchronous = NORMAL")
            .execute(&mut self.connection)
            .await
        {
            Ok(_) => self.relaxed = true,
            Err(error) => {
                tracing::debug!(%error, "committing the writer's own transaction durably");
            }
        }
        self.commit(Vec::new()).await;
        if let Err(error) = self.durable().await {
            tracing::warn!(%error, "the writer's next transaction tries again");
        }
    }

    /// Makes commits wait for the disk again after
    /// [`commit_own`](Self::commit_own); every transaction of commands
    /// checks it first.
    pub(super) async fn durable(&mut self) -> Result<(), BusError> {
        if self.relaxed {
            sqlx::query("PRAGMA synchronous = FULL")
                .execute(&mut self.connection)
                .await
                .map_err(|e| self.error("making commits wait for the disk again", &e))?;
            self.relaxed = false;
        }
        Ok(())
    }
}
