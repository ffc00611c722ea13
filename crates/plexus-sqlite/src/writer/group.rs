//! Consumer groups: joining and leaving, leasing deliverable messages
//! (claims), acks and nacks.

use std::time::Duration;

use plexus_core::Message;
use plexus_core::bus::{BusError, StartFrom};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::runs::Explode;
use super::{Writer, handover, millis};
use crate::row::{COLUMNS, decode};

/// A group's ids, as [`Command::Join`](super::Command::Join) answers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Joined {
    pub(crate) topic_id: i64,
    pub(crate) group_id: i64,
}

/// What a claim leased.
#[derive(Debug, Default)]
pub(crate) struct Claimed {
    /// `(seq, attempt, message)` in topic order.
    pub(crate) leased: Vec<(i64, u32, Message)>,
    /// When something of the group that is not free now (a lease's
    /// deadline, a nack's delay) falls due, wall-clock ms.
    pub(crate) next_due_ms: Option<i64>,
    /// The group no longer exists (a private group that expired).
    pub(crate) gone: bool,
}

impl Claimed {
    /// Splits one claim for several claimers, each wanting so many (in
    /// order: the first take the first messages); each learns when
    /// something falls due and whether the group is gone.
    pub(super) fn share(self, wants: &[usize]) -> Vec<Claimed> {
        let mut leased = self.leased.into_iter();
        wants
            .iter()
            .map(|&want| Claimed {
                leased: leased.by_ref().take(want).collect(),
                next_due_ms: self.next_due_ms,
                gone: self.gone,
            })
            .collect()
    }
}

/// Leases the first free pending messages of a group (due, and whose
/// key has nothing earlier pending): attempt + 1, due at the ack deadline.
/// The due index finds the free ones without reading the leased ones.
const LEASE: &str = "
UPDATE plexus_pending SET attempt = attempt + 1, due_ms = ?3, owner = ?5
WHERE group_id = ?1 AND seq IN (
    SELECT p.seq FROM plexus_pending p INDEXED BY plexus_pending_due
    WHERE p.group_id = ?1 AND p.due_ms <= ?2
      AND (p.key IS NULL OR NOT EXISTS (
          SELECT 1 FROM plexus_pending q
          WHERE q.group_id = ?1 AND q.key = p.key AND q.seq < p.seq))
    ORDER BY p.seq
    LIMIT ?4)
RETURNING seq, attempt";

/// `due_ms` of a pending message waiting for an earlier one of its key:
/// never due by time; the ack of the earlier one makes it free (due 0).
/// Claims thus find the free messages of a group through the due index
/// alone, however many wait behind busy keys.
pub(super) const WAITING: i64 = i64::MAX;

impl Writer {
    pub(super) async fn join(
        &mut self,
        topic: &str,
        group: &str,
        private: bool,
        start: StartFrom,
        now: i64,
    ) -> Result<Joined, BusError> {
        let topic_id = self.topic_id(topic).await?;
        let doing = || format!("joining group `{group}` of topic `{topic}`");
        sqlx::query(
            "INSERT INTO plexus_groups (topic_id, name, cursor, private, touched_ms)
             VALUES (?1, ?2,
                     CASE WHEN ?3 THEN 0
                          ELSE coalesce((SELECT max(seq) FROM plexus_messages WHERE topic_id = ?1), 0)
                     END,
                     ?4, ?5)
             ON CONFLICT (topic_id, name) DO NOTHING",
        )
        .bind(topic_id)
        .bind(group)
        .bind(start == StartFrom::Earliest)
        .bind(private)
        .bind(now)
        .execute(&mut self.connection)
        .await
        .map_err(|e| self.error(&doing(), &e))?;
        let group_id: i64 =
            sqlx::query_scalar("SELECT id FROM plexus_groups WHERE topic_id = ?1 AND name = ?2")
                .bind(topic_id)
                .bind(group)
                .fetch_one(&mut self.connection)
                .await
                .map_err(|e| self.error(&doing(), &e))?;
        if private {
            self.effects.joined_private.push(group_id);
        }
        Ok(Joined { topic_id, group_id })
    }

    /// Returns every lease of this bus instance at once (the bus is
    /// closing: its deliveries' answers will be ignored).
    pub(super) async fn release_leases(&mut self, now: i64) -> Result<(), BusError> {
        self.explode(Explode::Owned { now }).await?;
        sqlx::query(
            "UPDATE plexus_pending SET due_ms = ?1, owner = NULL WHERE owner = ?2 AND due_ms > ?1",
        )
        .bind(now)
        .bind(self.instance)
        .execute(&mut self.connection)
        .await
        .map_err(|e| self.error("returning the leases of a closing bus", &e))?;
        Ok(())
    }

    pub(super) async fn leave(&mut self, group_id: i64) -> Result<(), BusError> {
        self.remove_group(group_id).await?;
        self.effects.left.push(group_id);
        Ok(())
    }

    pub(super) async fn remove_group(&mut self, group_id: i64) -> Result<(), BusError> {
        for sql in [
            "DELETE FROM plexus_pending WHERE group_id = ?1",
            "DELETE FROM plexus_runs WHERE group_id = ?1",
            "DELETE FROM plexus_groups WHERE id = ?1",
        ] {
            sqlx::query(sql)
                .bind(group_id)
                .execute(&mut self.connection)
                .await
                .map_err(|e| self.error("removing a private group", &e))?;
        }
        self.effects.runs.groups_gone.push(group_id);
        Ok(())
    }

    /// Leases up to `max` deliverable messages of a group: free pending
    /// ones first (redeliveries, nacked ones, keys whose turn came), then
    /// new ones from the topic. Messages come from the writer's cache,
    /// the rest from the database.
    pub(super) async fn claim(
        &mut self,
        topic_id: i64,
        group_id: i64,
        max: usize,
        ack_deadline: Duration,
        now: i64,
    ) -> Result<Claimed, BusError> {
        let due = now
            .saturating_add(millis(ack_deadline))
            .saturating_add(handover::LEASE_PAD_MS);
        self.explode(Explode::Expired { group_id, now }).await?;
        let mut leased = self.lease(group_id, now, due, max).await?;
        let mut seqs: Vec<i64> = leased.iter().map(|(seq, _)| *seq).collect();
        let mut run = None;
        if leased.len() < max {
            let taken = self
                .take(topic_id, group_id, due, max - leased.len())
                .await?;
            seqs.extend(taken.rows.iter().map(|(seq, _)| *seq));
            leased.extend(taken.rows);
            leased.extend(taken.run.iter().map(|seq| (*seq, 1)));
            run = taken.run.first().copied();
        }
        leased.sort_unstable();
        if !leased.is_empty() {
            self.effects.leased.push(handover::Leased {
                group_id,
                due,
                ack_deadline_ms: millis(ack_deadline),
                seqs,
                run,
            });
        }
        let mut claimed = Claimed::default();
        if leased.len() < max {
            let row = sqlx::query(
                "SELECT (SELECT min(due) FROM (
                             SELECT min(due_ms) AS due FROM plexus_pending
                             WHERE group_id = ?1 AND due_ms > ?2 AND due_ms < ?3
                             UNION ALL
                             SELECT min(due_ms) FROM plexus_runs WHERE group_id = ?1)),
                        EXISTS (SELECT 1 FROM plexus_groups WHERE id = ?1)",
            )
            .bind(group_id)
            .bind(now)
            .bind(WAITING)
            .fetch_one(&mut self.connection)
            .await
            .map_err(|e| self.error("looking up a group", &e))?;
            claimed.next_due_ms = row.try_get(0).ok().flatten();
            claimed.gone = !row.try_get::<bool, _>(1).unwrap_or(true);
        }
        claimed.leased = self.messages(leased).await?;
        Ok(claimed)
    }

    /// The messages of `leased` (`(seq, attempt)` in seq order), from the
    /// cache or the database.
    async fn messages(
        &mut self,
        leased: Vec<(i64, u32)>,
    ) -> Result<Vec<(i64, u32, Message)>, BusError> {
        let mut found = Vec::with_capacity(leased.len());
        let mut missing = Vec::new();
        for (seq, attempt) in leased {
            match self.cache.get(seq) {
                Some(message) => found.push((seq, attempt, message.clone())),
                None => missing.push((seq, attempt)),
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let seqs = serde_json::to_string(&missing.iter().map(|l| l.0).collect::<Vec<_>>())
            .expect("a list of integers serializes");
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM plexus_messages WHERE seq IN (SELECT value FROM json_each(?1)) ORDER BY seq"
        ))
        .bind(seqs)
        .fetch_all(&mut self.connection)
        .await
        .map_err(|e| self.error("reading leased messages", &e))?;
        let mut attempts = missing.into_iter().peekable();
        for row in rows {
            let (seq, message) = decode(&row).map_err(|reason| {
                BusError::backend(
                    self.name.as_ref(),
                    format!("{reason}; the database was changed by something other than plexus"),
                )
            })?;
            while attempts.next_if(|(s, _)| *s < seq).is_some() {}
            if let Some((_, attempt)) = attempts.next_if(|(s, _)| *s == seq) {
                found.push((seq, attempt, message));
            }
        }
        found.sort_unstable_by_key(|(seq, _, _)| *seq);
        Ok(found)
    }

    /// Runs [`LEASE`]: the `(seq, attempt)` of the rows it leased.
    async fn lease(
        &mut self,
        group_id: i64,
        now: i64,
        due: i64,
        max: usize,
    ) -> Result<Vec<(i64, u32)>, BusError> {
        let rows = sqlx::query(LEASE)
            .bind(group_id)
            .bind(now)
            .bind(due)
            .bind(i64::try_from(max).unwrap_or(i64::MAX))
            .bind(self.instance)
            .fetch_all(&mut self.connection)
            .await
            .map_err(|e| self.error("leasing messages to a group", &e))?;
        self.leased_rows(&rows)
    }

    fn leased_rows(&self, rows: &[SqliteRow]) -> Result<Vec<(i64, u32)>, BusError> {
        rows.iter()
            .map(|row| {
                let seq: i64 = row.try_get(0)?;
                let attempt: i64 = row.try_get(1)?;
                Ok((seq, u32::try_from(attempt).unwrap_or(u32::MAX)))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| self.error("leasing messages to a group", &e))
    }
}
