//! Acks and nacks, batched: one task per bus takes every answer queued
//! and applies them in one DELETE (the acks) and one UPDATE (the nacks),
//! then tells each waiter. Concurrent answers share the statements and
//! their commits.
//!
//! An answer that fails (the server away) is reported to its caller, and
//! its message is then handed back to the group (a nack without delay,
//! retried in the background until the server takes it or the retries run
//! out), so that it is delivered again soon rather than at its ack
//! deadline.

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

/// How often a failed answer's message is offered back to its group.
const GIVE_BACK_TRIES: u32 = 50;
/// The pause between those tries.
const GIVE_BACK_PAUSE: Duration = Duration::from_millis(200);

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
            if applied.is_err() && answer.failures < GIVE_BACK_TRIES {
                give_back(&answer, &again, &cancel);
            }
            if let Some(reply) = answer.reply.take() {
                let outcome = match &applied {
                    Ok(()) => Ok(()),
                    Err(reason) => Err(BusError::backend(
                        name.as_ref(),
                        format!(
                            "recording the answer to message seq {} failed: {reason}; it will be delivered again",
                            answer.seq
                        ),
                    )),
                };
                let _ = reply.send(outcome);
            }
        }
    }
}

/// Queues a nack without delay for a failed answer's message, after a
/// pause.
fn give_back(answer: &Answer, again: &mpsc::WeakSender<Answer>, cancel: &CancellationToken) {
    let Some(queue) = again.upgrade() else {
        return;
    };
    let retry = Answer {
        // A failed ack becomes a nack without delay; a nack keeps its delay.
        nack: Some(answer.nack.unwrap_or_default()),
        reply: None,
        failures: answer.failures + 1,
        ..Answer::new(answer.group, answer.seq, answer.attempt, None, None)
    };
    let cancel = cancel.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = tokio::time::sleep(GIVE_BACK_PAUSE) => {
                let _ = queue.send(retry).await;
            }
            () = cancel.cancelled() => {}
        }
    });
}

async fn apply(pool: &PgPool, sql: &Statements, round: &[Answer]) -> Result<(), String> {
    let (acks, nacks): (Vec<&Answer>, Vec<&Answer>) = round.iter().partition(|a| a.nack.is_none());
    if !acks.is_empty() {
        let groups: Vec<i64> = acks.iter().map(|a| a.group).collect();
        let seqs: Vec<i64> = acks.iter().map(|a| a.seq).collect();
        let attempts: Vec<i32> = acks.iter().map(|a| a.attempt).collect();
        sqlx::query(&sql.ack)
            .bind(groups)
            .bind(seqs)
            .bind(attempts)
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
