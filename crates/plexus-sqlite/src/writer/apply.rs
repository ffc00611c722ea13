//! One commit's commands, applied kind by kind.

use std::sync::atomic::Ordering;
use std::time::Duration;

use plexus_core::Message;
use plexus_core::bus::BusError;

use super::Writer;
use super::answer::Answer;
use super::command::{Command, Outcome};

impl Writer {
    /// Applies `batch` inside the open transaction, after moving the
    /// outbox's committed messages into their topics when due, kind by
    /// kind so that a
    /// commit costs a few statements however many commands it carries:
    /// joins and leaves; the publishes of each topic together; every ack
    /// and nack together; the claims of each group together (after the
    /// publishes and answers, so they see both); returning the leases of
    /// a closing bus last. The outcomes are in `batch`'s order.
    pub(super) async fn apply(
        &mut self,
        batch: &[Command],
        now: i64,
    ) -> Result<Vec<Outcome>, BusError> {
        self.extend_leases().await?;
        if self.outbox_written.swap(false, Ordering::AcqRel) {
            self.outbox_due = true;
        }
        if self.outbox_due {
            self.drain_outbox().await?;
        }
        let mut outcomes: Vec<Option<Outcome>> = batch.iter().map(|_| None).collect();
        let mut publishes: Vec<(&str, Vec<usize>)> = Vec::new();
        // Leases nobody received go back first (else they would wait for
        // their ack deadline); lost again if this transaction fails.
        let returns = std::mem::take(&mut self.returns);
        let mut answers: Vec<Answer<'_>> = returns
            .iter()
            .map(|r| Answer {
                topic: &r.topic,
                group_id: r.group_id,
                seq: r.seq,
                attempt: r.attempt,
                key: None,
                nack: Some(Duration::ZERO),
            })
            .collect();
        let mut claims: Vec<(ClaimKey, Vec<Claimer>)> = Vec::new();
        let mut release = false;
        for (index, command) in batch.iter().enumerate() {
            match command {
                Command::Publish { topic, .. } => {
                    match publishes.iter_mut().find(|(t, _)| *t == topic.as_str()) {
                        Some((_, indexes)) => indexes.push(index),
                        None => publishes.push((topic.as_str(), vec![index])),
                    }
                }
                Command::Join {
                    topic,
                    group,
                    private,
                    start,
                    ..
                } => {
                    let joined = self.join(topic, group, *private, *start, now).await?;
                    outcomes[index] = Some(Outcome::Joined(joined));
                }
                Command::Leave { group_id } => {
                    self.leave(*group_id).await?;
                    outcomes[index] = Some(Outcome::Done);
                }
                Command::Claim {
                    topic_id,
                    group_id,
                    ack_deadline,
                    ..
                } => {
                    let key = (*group_id, *topic_id, *ack_deadline);
                    add_claim(&mut claims, key, Claimer::Command(index));
                }
                Command::Answer {
                    topic,
                    group_id,
                    seq,
                    attempt,
                    key,
                    nack,
                    ..
                } => {
                    answers.push(Answer {
                        topic,
                        group_id: *group_id,
                        seq: *seq,
                        attempt: *attempt,
                        key: key.as_deref(),
                        nack: *nack,
                    });
                    outcomes[index] = Some(Outcome::Done);
                }
                Command::ReleaseLeases => {
                    release = true;
                    outcomes[index] = Some(Outcome::Done);
                }
                Command::Close { .. } | Command::Wake => outcomes[index] = Some(Outcome::Done),
            }
        }
        for (topic, indexes) in publishes {
            let batches: Vec<&[Message]> = indexes
                .iter()
                .map(|&i| match &batch[i] {
                    Command::Publish { batch, .. } => batch.as_slice(),
                    _ => unreachable!("indexes of publishes"),
                })
                .collect();
            let results = self.publish(topic, &batches).await?;
            for (index, result) in indexes.into_iter().zip(results) {
                outcomes[index] = Some(Outcome::Published(result));
            }
        }
        if !answers.is_empty() {
            self.answer(&answers, now).await?;
        }
        // Parked claims whose topic got something in this transaction
        // claim along with the new ones.
        self.unpark_woken();
        for (i, (parked, _)) in self.unparked.iter().enumerate() {
            let key = (parked.group_id, parked.topic_id, parked.ack_deadline);
            add_claim(&mut claims, key, Claimer::Parked(i));
        }
        for ((group_id, topic_id, ack_deadline), claimers) in claims {
            let wants: Vec<usize> = claimers
                .iter()
                .map(|claimer| match *claimer {
                    Claimer::Command(i) => match &batch[i] {
                        Command::Claim { max, .. } => *max,
                        _ => unreachable!("indexes of claims"),
                    },
                    Claimer::Parked(i) => self.unparked[i].0.max,
                })
                .collect();
            let total = wants.iter().sum();
            let claimed = self
                .claim(topic_id, group_id, total, ack_deadline, now)
                .await?;
            for (claimer, share) in claimers.into_iter().zip(claimed.share(&wants)) {
                match claimer {
                    Claimer::Command(i) => outcomes[i] = Some(Outcome::Claimed(share)),
                    Claimer::Parked(i) => self.unparked[i].1 = Some(share),
                }
            }
        }
        if release {
            self.release_leases(now).await?;
        }
        Ok(outcomes
            .into_iter()
            .map(|o| o.expect("every command has an outcome"))
            .collect())
    }
}

/// Claims that are run together: the same group, topic and ack deadline.
type ClaimKey = (i64, i64, Duration);

/// Who a claim's share goes to.
#[derive(Clone, Copy)]
enum Claimer {
    /// The command at this index of the batch.
    Command(usize),
    /// The parked claim at this index of `Writer::unparked`.
    Parked(usize),
}

fn add_claim(claims: &mut Vec<(ClaimKey, Vec<Claimer>)>, key: ClaimKey, claimer: Claimer) {
    match claims.iter_mut().find(|(k, _)| *k == key) {
        Some((_, claimers)) => claimers.push(claimer),
        None => claims.push((key, vec![claimer])),
    }
}
