//! Retention: deletes, in bounded batches, the messages every group of a
//! topic has acknowledged, and the oldest messages of a topic without
//! groups beyond its window; keeps this process's private groups alive and
//! removes those of processes that stopped.

use std::time::Duration;

use plexus_core::bus::BusError;
use sqlx::Row;
use tokio::time::Instant;

use super::{Writer, millis, now_ms};

/// Expired private groups removed per pass at most.
const EXPIRED_PER_PASS: i64 = 64;

impl Writer {
    /// One retention pass in a transaction of its own; schedules the next
    /// (at once when it used its whole budget, so a backlog drains in
    /// bounded steps between other writes).
    pub(super) async fn retain(&mut self) {
        let interval = self.config.retention_interval;
        match self.retention_transaction().await {
            Ok(more) => {
                self.committed();
                self.retention_due = if more {
                    Instant::now()
                } else {
                    Instant::now() + interval
                };
            }
            Err(error) => {
                tracing::warn!(%error, "retention pass failed; retrying later");
                self.retention_due = Instant::now() + interval.max(Duration::from_secs(1));
            }
        }
    }

    async fn retention_transaction(&mut self) -> Result<bool, BusError> {
        self.durable().await?;
        self.effects = Default::default();
        let _turn = self.turns.take().await;
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut self.connection)
            .await
            .map_err(|e| self.error("starting a retention pass", &e))?;
        match self.retention_steps().await {
            Ok(more) => {
                if let Err(e) = sqlx::query("COMMIT").execute(&mut self.connection).await {
                    let error = self.error("committing a retention pass", &e);
                    self.rollback().await;
                    return Err(error);
                }
                Ok(more)
            }
            Err(error) => {
                self.rollback().await;
                Err(error)
            }
        }
    }

    async fn retention_steps(&mut self) -> Result<bool, BusError> {
        let now = now_ms();
        if Instant::now() >= self.touch_due {
            self.touch_private_groups(now).await?;
            self.touch_due = Instant::now() + self.config.private_group_expiry / 4;
        }
        let topics = sqlx::query("SELECT id, retained FROM plexus_topics WHERE retained > 0")
            .fetch_all(&mut self.connection)
            .await
            .map_err(|e| self.error("listing topics for retention", &e))?;
        let mut budget = i64::try_from(self.config.retention_batch).unwrap_or(i64::MAX);
        for row in topics {
            if budget == 0 {
                return Ok(true);
            }
            let topic_id: i64 = row.try_get(0).unwrap_or_default();
            let retained: i64 = row.try_get(1).unwrap_or_default();
            let deleted = self.trim(topic_id, retained, budget).await?;
            budget -= deleted;
        }
        Ok(budget == 0)
    }

    /// Marks this process's private groups alive; removes the private
    /// groups nobody marked within the expiry.
    async fn touch_private_groups(&mut self, now: i64) -> Result<(), BusError> {
        let doing = "keeping private groups alive";
        if !self.private_groups.is_empty() {
            let ids = serde_json::to_string(&self.private_groups.iter().collect::<Vec<_>>())
                .expect("a list of integers serializes");
            sqlx::query(
                "UPDATE plexus_groups SET touched_ms = ?1 WHERE id IN (SELECT value FROM json_each(?2))",
            )
            .bind(now)
            .bind(ids)
            .execute(&mut self.connection)
            .await
            .map_err(|e| self.error(doing, &e))?;
        }
        let cutoff = now.saturating_sub(millis(self.config.private_group_expiry));
        let expired: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM plexus_groups WHERE private AND touched_ms < ?1 LIMIT ?2",
        )
        .bind(cutoff)
        .bind(EXPIRED_PER_PASS)
        .fetch_all(&mut self.connection)
        .await
        .map_err(|e| self.error(doing, &e))?;
        for group_id in expired {
            tracing::info!(
                group_id,
                "removing a private group whose process stopped without leaving"
            );
            self.remove_group(group_id).await?;
        }
        Ok(())
    }

    /// Deletes up to `budget` messages of a topic that no group needs;
    /// how many.
    async fn trim(&mut self, topic_id: i64, retained: i64, budget: i64) -> Result<i64, BusError> {
        let doing = "deleting acknowledged messages";
        let low: Option<i64> = sqlx::query_scalar(
            "SELECT min(min(
                 coalesce((SELECT min(p.seq) FROM plexus_pending p WHERE p.group_id = g.id),
                          g.cursor + 1),
                 coalesce((SELECT min(r.low_seq) FROM plexus_runs r WHERE r.group_id = g.id),
                          g.cursor + 1)))
             FROM plexus_groups g WHERE g.topic_id = ?1",
        )
        .bind(topic_id)
        .fetch_one(&mut self.connection)
        .await
        .map_err(|e| self.error(doing, &e))?;
        let below = match low {
            Some(low) => low,
            None => {
                // No groups: keep the latest `retain_without_groups`.
                let keep = i64::try_from(self.config.retain_without_groups).unwrap_or(i64::MAX);
                if retained <= keep {
                    return Ok(0);
                }
                let first_kept: Option<i64> = sqlx::query_scalar(
                    "SELECT seq FROM plexus_messages WHERE topic_id = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2",
                )
                .bind(topic_id)
                .bind(keep.saturating_sub(1))
                .fetch_optional(&mut self.connection)
                .await
                .map_err(|e| self.error(doing, &e))?;
                match first_kept {
                    Some(seq) => seq,
                    None => return Ok(0),
                }
            }
        };
        let deleted = sqlx::query(
            "DELETE FROM plexus_messages WHERE seq IN (
                 SELECT seq FROM plexus_messages WHERE topic_id = ?1 AND seq < ?2 ORDER BY seq LIMIT ?3)",
        )
        .bind(topic_id)
        .bind(below)
        .bind(budget)
        .execute(&mut self.connection)
        .await
        .map_err(|e| self.error(doing, &e))?
        .rows_affected();
        let deleted = i64::try_from(deleted).unwrap_or(i64::MAX);
        if deleted > 0 {
            sqlx::query("UPDATE plexus_topics SET retained = max(retained - ?1, 0) WHERE id = ?2")
                .bind(deleted)
                .bind(topic_id)
                .execute(&mut self.connection)
                .await
                .map_err(|e| self.error(doing, &e))?;
        }
        Ok(deleted)
    }
}
