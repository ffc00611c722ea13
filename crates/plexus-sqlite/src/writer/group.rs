//! Consumer groups: joining and leaving, leasing deliverable messages
//! (claims), acks and nacks.

use std::sync::Arc;
use std::time::Duration;

use plexus_core::Message;
use plexus_core::bus::{BusError, StartFrom};
use sqlx::Row;

use super::{Writer, millis};
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

/// Messages taken from the topic into a group's pending set per claim at
/// most (the window bounds the set itself).
const PASS_CHUNK: u64 = 1024;

/// Leases the first free pending messages of a group whose key has nothing
/// earlier pending: attempt + 1, due at the ack deadline.
const LEASE: &str = "
UPDATE plexus_pending SET attempt = attempt + 1, due_ms = ?3, owner = ?5
WHERE group_id = ?1 AND seq IN (
    SELECT p.seq FROM plexus_pending p
    WHERE p.group_id = ?1 AND p.due_ms <= ?2
      AND (p.key IS NULL OR NOT EXISTS (
          SELECT 1 FROM plexus_pending q
          WHERE q.group_id = ?1 AND q.key = p.key AND q.seq < p.seq))
    ORDER BY p.seq
    LIMIT ?4)
RETURNING seq, attempt";

/// Takes the next messages of the topic past the group's cursor into its
/// pending set.
const PASS: &str = "
INSERT INTO plexus_pending (group_id, seq, key, attempt, due_ms)
SELECT ?1, seq, key, 0, 0 FROM plexus_messages
WHERE topic_id = ?2 AND seq > (SELECT cursor FROM plexus_groups WHERE id = ?1)
ORDER BY seq
LIMIT ?3";

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
            "DELETE FROM plexus_groups WHERE id = ?1",
        ] {
            sqlx::query(sql)
                .bind(group_id)
                .execute(&mut self.connection)
                .await
                .map_err(|e| self.error("removing a private group", &e))?;
        }
        Ok(())
    }

    pub(super) async fn claim(
        &mut self,
        topic_id: i64,
        group_id: i64,
        max: usize,
        ack_deadline: Duration,
        now: i64,
    ) -> Result<Claimed, BusError> {
        let due = now.saturating_add(millis(ack_deadline));
        let mut leased = self.lease(group_id, now, due, max).await?;
        if leased.len() < max && self.pass(topic_id, group_id).await? > 0 {
            let more = self.lease(group_id, now, due, max - leased.len()).await?;
            leased.extend(more);
        }
        leased.sort_unstable();
        let mut claimed = Claimed::default();
        if leased.len() < max {
            let row = sqlx::query(
                "SELECT (SELECT min(due_ms) FROM plexus_pending WHERE group_id = ?1 AND due_ms > ?2),
                        EXISTS (SELECT 1 FROM plexus_groups WHERE id = ?1)",
            )
            .bind(group_id)
            .bind(now)
            .fetch_one(&mut self.connection)
            .await
            .map_err(|e| self.error("looking up a group", &e))?;
            claimed.next_due_ms = row.try_get(0).ok().flatten();
            claimed.gone = !row.try_get::<bool, _>(1).unwrap_or(true);
        }
        if leased.is_empty() {
            return Ok(claimed);
        }
        let seqs = serde_json::to_string(&leased.iter().map(|l| l.0).collect::<Vec<_>>())
            .expect("a list of integers serializes");
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM plexus_messages WHERE seq IN (SELECT value FROM json_each(?1)) ORDER BY seq"
        ))
        .bind(seqs)
        .fetch_all(&mut self.connection)
        .await
        .map_err(|e| self.error("reading leased messages", &e))?;
        let mut attempts = leased.into_iter().peekable();
        for row in rows {
            let (seq, message) = decode(&row).map_err(|reason| {
                BusError::backend(
                    self.name.as_ref(),
                    format!("{reason}; the database was changed by something other than plexus"),
                )
            })?;
            while attempts.next_if(|(s, _)| *s < seq).is_some() {}
            if let Some((_, attempt)) = attempts.next_if(|(s, _)| *s == seq) {
                claimed.leased.push((seq, attempt, message));
            }
        }
        Ok(claimed)
    }

    /// Leases up to `max` free pending messages: `(seq, attempt)`.
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
        rows.iter()
            .map(|row| {
                let seq: i64 = row.try_get(0)?;
                let attempt: i64 = row.try_get(1)?;
                Ok((seq, u32::try_from(attempt).unwrap_or(u32::MAX)))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| self.error("leasing messages to a group", &e))
    }

    /// Moves the next messages past the group's cursor into its pending
    /// set, within the window; how many.
    async fn pass(&mut self, topic_id: i64, group_id: i64) -> Result<u64, BusError> {
        let doing = "taking messages into a group";
        let pending: i64 =
            sqlx::query_scalar("SELECT count(*) FROM plexus_pending WHERE group_id = ?1")
                .bind(group_id)
                .fetch_one(&mut self.connection)
                .await
                .map_err(|e| self.error(doing, &e))?;
        let room = self
            .config
            .group_window
            .saturating_sub(u64::try_from(pending).unwrap_or(0))
            .min(PASS_CHUNK);
        if room == 0 {
            return Ok(0);
        }
        let passed = sqlx::query(PASS)
            .bind(group_id)
            .bind(topic_id)
            .bind(i64::try_from(room).unwrap_or(i64::MAX))
            .execute(&mut self.connection)
            .await
            .map_err(|e| self.error(doing, &e))?
            .rows_affected();
        if passed > 0 {
            sqlx::query(
                "UPDATE plexus_groups SET cursor = (SELECT max(seq) FROM plexus_pending WHERE group_id = ?1) WHERE id = ?1",
            )
            .bind(group_id)
            .execute(&mut self.connection)
            .await
            .map_err(|e| self.error(doing, &e))?;
        }
        Ok(passed)
    }

    /// Acks (`nack` = `None`) or nacks a delivery; a stale one (redelivered
    /// since, or its group gone) is ignored.
    pub(super) async fn answer(
        &mut self,
        topic: &Arc<str>,
        group_id: i64,
        seq: i64,
        attempt: u32,
        nack: Option<Duration>,
        now: i64,
    ) -> Result<(), BusError> {
        let wake = match nack {
            None => {
                let row = sqlx::query(
                    "DELETE FROM plexus_pending WHERE group_id = ?1 AND seq = ?2 AND attempt = ?3 RETURNING key IS NOT NULL",
                )
                .bind(group_id)
                .bind(seq)
                .bind(i64::from(attempt))
                .fetch_optional(&mut self.connection)
                .await
                .map_err(|e| self.error(&format!("acknowledging a message of topic `{topic}`"), &e))?;
                // Acking a keyed message frees the next one of its key.
                row.is_some_and(|row| row.try_get::<bool, _>(0).unwrap_or(true))
            }
            Some(delay) => {
                sqlx::query(
                    "UPDATE plexus_pending SET due_ms = ?4, owner = NULL WHERE group_id = ?1 AND seq = ?2 AND attempt = ?3",
                )
                .bind(group_id)
                .bind(seq)
                .bind(i64::from(attempt))
                .bind(now.saturating_add(millis(delay)))
                .execute(&mut self.connection)
                .await
                .map_err(|e| self.error(&format!("returning a message of topic `{topic}`"), &e))?
                .rows_affected()
                    > 0
            }
        };
        if wake {
            self.effects.wake.insert(Arc::clone(topic));
        }
        Ok(())
    }
}
