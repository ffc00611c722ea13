//! Acks and nacks: every answer of one commit in one statement per kind
//! (the answers travel as a JSON array of rows), so a commit costs the
//! same few statements however many deliveries it answers.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use plexus_core::bus::BusError;

use super::group::WAITING;
use super::runs::Explode;
use super::{Writer, millis};

/// One delivery's answer.
pub(super) struct Answer<'a> {
    pub(super) topic: &'a Arc<str>,
    pub(super) group_id: i64,
    pub(super) seq: i64,
    pub(super) attempt: u32,
    /// The message's key (acking it frees the next of its key).
    pub(super) key: Option<&'a str>,
    /// `None`: ack; `Some(delay)`: nack, deliverable again after it.
    pub(super) nack: Option<Duration>,
}

/// Deletes the acknowledged deliveries that are still the current lease
/// of their message (a stale answer, whose message was delivered again
/// since or whose group is gone, matches nothing).
const ACK: &str = "
DELETE FROM plexus_pending
WHERE (group_id, seq, attempt) IN (
    SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?1))";

/// Deletes the acknowledged deliveries of one group and attempt (?1, ?2)
/// whose seqs are in the JSON list ?3 — the usual case, cheaper to read
/// than rows of three.
const ACK_ONE: &str = "
DELETE FROM plexus_pending
WHERE group_id = ?1 AND attempt = ?2 AND seq IN (SELECT value FROM json_each(?3))";

/// Distinct (group, attempt) pairs of one commit's acks written with
/// [`ACK_ONE`] each at most; more go together through [`ACK`].
const ACK_ONE_STATEMENTS: usize = 4;

/// Frees the next message of each acknowledged key (?1, JSON rows of
/// group and key) that was waiting for its turn ([`WAITING`]). After a
/// stale ack the key's first pending message is the one still out, not a
/// waiting one: nothing changes.
const TURN: &str = "
UPDATE plexus_pending SET due_ms = 0
WHERE due_ms = ?2 AND (group_id, seq) IN (
    SELECT j.value ->> 0, (SELECT min(q.seq) FROM plexus_pending q
                           WHERE q.group_id = j.value ->> 0 AND q.key = j.value ->> 1)
    FROM json_each(?1) AS j)";

/// Returns the nacked deliveries that are still current, deliverable
/// again from their due time.
const NACK: &str = "
UPDATE plexus_pending SET due_ms = j.value ->> 3, owner = NULL
FROM json_each(?1) AS j
WHERE plexus_pending.group_id = j.value ->> 0
  AND plexus_pending.seq = j.value ->> 1
  AND plexus_pending.attempt = j.value ->> 2";

impl Writer {
    /// Applies `answers`: a statement for the acks of each group (one for
    /// all of them when many groups answer), one for the nacks.
    pub(super) async fn answer(
        &mut self,
        answers: &[Answer<'_>],
        now: i64,
    ) -> Result<(), BusError> {
        let in_run = self.answer_runs(answers).await?;
        let mut acks: BTreeMap<(i64, u32), String> = BTreeMap::new();
        // Acks of runs another process exploded go to the pending rows.
        for (group_id, seq) in in_run.gone {
            add_ack(&mut acks, (group_id, 1), seq);
        }
        let mut nacks = String::from("[");
        let mut turns: Vec<(i64, &str)> = Vec::new();
        for (answer, _) in answers.iter().zip(&in_run.acked).filter(|(_, run)| !**run) {
            // Acking a keyed message frees the next one of its key; a nack
            // makes its message deliverable again.
            if answer.key.is_some() || answer.nack.is_some() {
                self.effects.wake.insert(Arc::clone(answer.topic));
            }
            let Some(delay) = answer.nack else {
                if let Some(key) = answer.key {
                    turns.push((answer.group_id, key));
                }
                add_ack(&mut acks, (answer.group_id, answer.attempt), answer.seq);
                continue;
            };
            if nacks.len() > 1 {
                nacks.push(',');
            }
            // Times are whole milliseconds, read rounded down: one more
            // keeps a delayed redelivery from coming back before its delay.
            let due = if delay.is_zero() {
                now
            } else {
                now.saturating_add(millis(delay)).saturating_add(1)
            };
            let _ = write!(
                nacks,
                "[{},{},{},{due}]",
                answer.group_id, answer.seq, answer.attempt
            );
        }
        if acks.len() <= ACK_ONE_STATEMENTS {
            for ((group_id, attempt), seqs) in &acks {
                sqlx::query(ACK_ONE)
                    .bind(group_id)
                    .bind(i64::from(*attempt))
                    .bind(format!("[{seqs}]"))
                    .execute(&mut self.connection)
                    .await
                    .map_err(|e| self.answer_error("acknowledging deliveries", answers, &e))?;
            }
        } else {
            let mut rows = String::from("[");
            for ((group_id, attempt), seqs) in &acks {
                for seq in seqs.split(',') {
                    if rows.len() > 1 {
                        rows.push(',');
                    }
                    let _ = write!(rows, "[{group_id},{seq},{attempt}]");
                }
            }
            rows.push(']');
            sqlx::query(ACK)
                .bind(rows)
                .execute(&mut self.connection)
                .await
                .map_err(|e| self.answer_error("acknowledging deliveries", answers, &e))?;
        }
        if !turns.is_empty() {
            let turns =
                serde_json::to_string(&turns).expect("pairs of a number and a string serialize");
            sqlx::query(TURN)
                .bind(turns)
                .bind(WAITING)
                .execute(&mut self.connection)
                .await
                .map_err(|e| {
                    self.answer_error("freeing the next message of acknowledged keys", answers, &e)
                })?;
        }
        if nacks.len() > 1 {
            nacks.push(']');
            sqlx::query(NACK)
                .bind(nacks)
                .execute(&mut self.connection)
                .await
                .map_err(|e| self.answer_error("returning (nack) deliveries", answers, &e))?;
        }
        Ok(())
    }
}
/// What [`Writer::answer_runs`] did.
struct RunAnswers {
    /// Per answer: an ack recorded in its run.
    acked: Vec<bool>,
    /// `(group, seq)` of acks whose run was gone.
    gone: Vec<(i64, i64)>,
}

impl Writer {
    /// The answers to messages of this writer's runs: acks go to the
    /// runs' rows; a nack first explodes its run into pending rows (the
    /// nack statement then returns its message).
    async fn answer_runs(&mut self, answers: &[Answer<'_>]) -> Result<RunAnswers, BusError> {
        let mut acked = vec![false; answers.len()];
        let mut run_acks: BTreeMap<(i64, i64), Vec<i64>> = BTreeMap::new();
        let mut explode: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
        for (answer, acked) in answers.iter().zip(&mut acked) {
            // Runs hold messages without a key, at their first attempt.
            if answer.key.is_some() || answer.attempt != 1 {
                continue;
            }
            let Some(first) = self.runs.find(answer.group_id, answer.seq) else {
                continue;
            };
            if answer.nack.is_some() {
                explode.entry(answer.group_id).or_default().insert(first);
            } else {
                run_acks
                    .entry((answer.group_id, first))
                    .or_default()
                    .push(answer.seq);
                *acked = true;
            }
        }
        for (group_id, firsts) in explode {
            let list = serde_json::to_string(&firsts).expect("a list of integers serializes");
            self.explode(Explode::Listed {
                group_id,
                firsts: &list,
            })
            .await?;
            // Gone either way (exploded now, or by another process).
            self.effects
                .runs
                .gone
                .extend(firsts.into_iter().map(|first| (group_id, first)));
        }
        let gone = self.ack_runs(&run_acks).await?;
        Ok(RunAnswers { acked, gone })
    }

    /// A failed answer statement, naming the topics answered.
    fn answer_error(&self, doing: &str, answers: &[Answer<'_>], error: &sqlx::Error) -> BusError {
        self.error(&format!("{doing} of {}", topics(answers)), error)
    }
}

/// Adds `seq` to the acks of `(group, attempt)`.
fn add_ack(acks: &mut BTreeMap<(i64, u32), String>, at: (i64, u32), seq: i64) {
    let list = acks.entry(at).or_default();
    if !list.is_empty() {
        list.push(',');
    }
    let _ = write!(list, "{seq}");
}

/// The topics of `answers`, for an error.
fn topics(answers: &[Answer<'_>]) -> String {
    let names: BTreeSet<&str> = answers.iter().map(|a| a.topic.as_ref()).collect();
    let shown: Vec<String> = names.iter().take(5).map(|t| format!("`{t}`")).collect();
    let more = names.len().saturating_sub(shown.len());
    let mut text = format!("topic {}", shown.join(", "));
    if more > 0 {
        let _ = write!(text, " and {more} more");
    }
    text
}
