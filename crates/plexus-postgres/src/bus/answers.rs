//! Acks and nacks, batched: one task per bus takes every answer queued
//! and applies them in one call of the schema's `ack()` (the acks, as
//! ranges of consecutive seqs) and one of `nack()`, then tells each
//! waiter. Concurrent answers share the statements and
//! their commits.
//!
//! An answer whose round fails (the server away) is applied again every
//! [`RETRY_PAUSE`] while its caller waits, up to [`ANSWER_TRIES`]
//! times: whether the failed round was recorded is unknown (its commit
//! may have happened before the connection broke), and applying an answer
//! twice changes nothing. Only then does the caller get an error (the
//! message comes again after its ack deadline).

use std::sync::Arc;
use std::time::Duration;

use plexus_core::bus::BusError;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::statements::Statements;

/// Answers applied in one round at most.
const MAX_ROUND: usize = 4096;
/// The longest nack delay applied, milliseconds (100 years; longer ones
/// are cut to it).
const MAX_DELAY_MS: i64 = 100 * 365 * 24 * 3600 * 1000;

/// How often an answer is tried before its caller gets an error.
const ANSWER_TRIES: u32 = 50;
/// The pause between those tries.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// One delivery's answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) group: i64,
    pub(crate) seq: i64,
    pub(crate) attempt: i32,
    /// `None`: ack; `Some(delay)`: nack.
    pub(crate) nack: Option<Duration>,
    /// Told the outcome; `None` for a dropped delivery's nack.
    pub(crate) reply: Option<oneshot::Sender<Result<(), BusError>>>,
    /// How often this answer was tried and failed.
    pub(crate) failures: u32,
}

impl Answer {
    /// An answer to send: no failures yet.
    pub(crate) fn new(
        group: i64,
        seq: i64,
        attempt: i32,
        nack: Option<Duration>,
        reply: Option<oneshot::Sender<Result<(), BusError>>>,
    ) -> Self {
        Answer {
            group,
            seq,
            attempt,
            nack,
            reply,
            failures: 0,
        }
    }
}

/// Applies the answers `queue` brings until it closes or `cancel`.
pub(crate) async fn run(
    pool: PgPool,
    sql: Arc<Statements>,
    name: Arc<str>,
    mut queue: mpsc::Receiver<Answer>,
    again: mpsc::WeakSender<Answer>,
    cancel: CancellationToken,
) {
    let mut round = Vec::with_capacity(64);
    loop {
        let got = tokio::select! {
            got = queue.recv_many(&mut round, MAX_ROUND) => got,
            () = cancel.cancelled() => return,
        };
        if got == 0 {
            return;
        }
        let applied = tokio::select! {
            applied = apply(&pool, &sql, &round) => applied,
            () = cancel.cancelled() => return,
        };
        for mut answer in round.drain(..) {
            let Err(reason) = &applied else {
                if let Some(reply) = answer.reply.take() {
                    let _ = reply.send(Ok(()));
                }
                continue;
            };
            // Whether a failed round was recorded is unknown (the
            // connection may have broken after its commit): the same answer
            // is applied again once the server takes it, its waiter still
            // waiting. Applying an answer twice changes nothing (an ack
            // whose message is gone deletes nothing).
            if answer.failures + 1 < ANSWER_TRIES {
                answer = match retry(answer, &again, &cancel) {
                    Ok(()) => continue,
                    Err(unsent) => unsent,
                };
            }
            if let Some(reply) = answer.reply.take() {
                let _ = reply.send(Err(BusError::backend(
                    name.as_ref(),
                    format!(
                        "recording the answer to message seq {} failed {} times: {reason}; \
                         it will be delivered again after its ack deadline",
                        answer.seq,
                        answer.failures + 1
                    ),
                )));
            }
        }
    }
}

/// Queues `answer` again after a pause; gives it back when the bus is
/// closing.
fn retry(
    mut answer: Answer,
    again: &mpsc::WeakSender<Answer>,
    cancel: &CancellationToken,
) -> Result<(), Answer> {
    let Some(queue) = again.upgrade() else {
        return Err(answer);
    };
    answer.failures += 1;
    let cancel = cancel.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = tokio::time::sleep(RETRY_PAUSE) => {
                let _ = queue.send(answer).await;
            }
            () = cancel.cancelled() => {}
        }
    });
    Ok(())
}

async fn apply(pool: &PgPool, sql: &Statements, round: &[Answer]) -> Result<(), String> {
    let (acks, nacks): (Vec<&Answer>, Vec<&Answer>) = round.iter().partition(|a| a.nack.is_none());
    if !acks.is_empty() {
        let ranges = Ranges::of(&acks);
        sqlx::query(&sql.ack)
            .bind(ranges.groups)
            .bind(ranges.firsts)
            .bind(ranges.lasts)
            .bind(ranges.attempts)
            .execute(pool)
            .await
            .map_err(|e| e.to_string())?;
    }
    if !nacks.is_empty() {
        let groups: Vec<i64> = nacks.iter().map(|a| a.group).collect();
        let seqs: Vec<i64> = nacks.iter().map(|a| a.seq).collect();
        let attempts: Vec<i32> = nacks.iter().map(|a| a.attempt).collect();
        let delays: Vec<i64> = nacks
            .iter()
            .map(|a| {
                let millis = a.nack.unwrap_or_default().as_millis();
                i64::try_from(millis).map_or(MAX_DELAY_MS, |ms| ms.min(MAX_DELAY_MS))
            })
            .collect();
        sqlx::query(&sql.nack)
            .bind(groups)
            .bind(seqs)
            .bind(attempts)
            .bind(delays)
            .execute(pool)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Acks as ranges, one array per column of `ack()`: consecutive seqs of
/// a group acknowledged in the same attempt are one range (the messages
/// of one claim mostly are), so the statement takes one index range per
/// range instead of one lookup per message.
#[derive(Debug, Default, PartialEq)]
struct Ranges {
    groups: Vec<i64>,
    firsts: Vec<i64>,
    lasts: Vec<i64>,
    attempts: Vec<i32>,
}

impl Ranges {
    /// The ranges of `acks`: every seq of a range, first to last, is one
    /// of them, in that group and attempt.
    fn of(acks: &[&Answer]) -> Self {
        let mut keys: Vec<(i64, i32, i64)> =
            acks.iter().map(|a| (a.group, a.attempt, a.seq)).collect();
        keys.sort_unstable();
        keys.dedup();
        let mut ranges = Ranges::default();
        for (group, attempt, seq) in keys {
            let n = ranges.lasts.len();
            if n > 0
                && ranges.groups[n - 1] == group
                && ranges.attempts[n - 1] == attempt
                && ranges.lasts[n - 1].checked_add(1) == Some(seq)
            {
                ranges.lasts[n - 1] = seq;
                continue;
            }
            ranges.groups.push(group);
            ranges.firsts.push(seq);
            ranges.lasts.push(seq);
            ranges.attempts.push(attempt);
        }
        ranges
    }
}

#[cfg(test)]
mod tests {
    use super::{Answer, Ranges};

    fn ranges(acks: &[(i64, i64, i32)]) -> Ranges {
        let answers: Vec<Answer> = acks
            .iter()
            .map(|&(group, seq, attempt)| Answer::new(group, seq, attempt, None, None))
            .collect();
        let refs: Vec<&Answer> = answers.iter().collect();
        Ranges::of(&refs)
    }

    #[test]
    fn consecutive_seqs_of_a_group_and_attempt_are_one_range() {
        let got = ranges(&[(1, 12, 1), (1, 10, 1), (1, 11, 1), (1, 11, 1), (1, 14, 1)]);
        assert_eq!(got.groups, [1, 1]);
        assert_eq!(got.firsts, [10, 14]);
        assert_eq!(got.lasts, [12, 14]);
        assert_eq!(got.attempts, [1, 1]);
    }

    #[test]
    fn another_group_or_attempt_starts_a_range() {
        let got = ranges(&[(1, 10, 1), (1, 11, 2), (2, 12, 1), (1, 12, 2)]);
        assert_eq!(got.groups, [1, 1, 2]);
        assert_eq!(got.firsts, [10, 11, 12]);
        assert_eq!(got.lasts, [10, 12, 12]);
        assert_eq!(got.attempts, [1, 2, 1]);
    }

    #[test]
    fn no_range_spans_a_missing_seq() {
        let got = ranges(&[(1, 10, 1), (1, 12, 1), (1, i64::MAX, 1)]);
        assert_eq!(got.firsts, [10, 12, i64::MAX]);
        assert_eq!(got.lasts, [10, 12, i64::MAX]);
    }
}
