//! The writer's commands, what each did, and how each is answered.

use std::sync::Arc;
use std::time::Duration;

use plexus_core::Message;
use plexus_core::bus::{BusError, StartFrom};
use tokio::sync::{OwnedSemaphorePermit, oneshot};
use tokio::time::Instant;

use super::park::{Parked, Returned};
use super::{Claimed, Joined};

/// A change for the writer, with where to send its outcome.
pub(crate) enum Command {
    /// Append `batch` to `topic`.
    Publish {
        topic: String,
        batch: Vec<Message>,
        /// The batch's room in the writer's byte budget, freed once done.
        permit: OwnedSemaphorePermit,
        reply: oneshot::Sender<Result<(), BusError>>,
    },
    /// Create the group if it does not exist; tell its id.
    Join {
        topic: String,
        group: String,
        private: bool,
        start: StartFrom,
        reply: oneshot::Sender<Result<Joined, BusError>>,
    },
    /// Remove a private group and what it holds.
    Leave { group_id: i64 },
    /// Lease up to `max` deliverable messages of a group; when there are
    /// none, wait (parked at the writer) for some, until `until`.
    Claim {
        topic: Arc<str>,
        topic_id: i64,
        group_id: i64,
        max: usize,
        ack_deadline: Duration,
        until: Instant,
        reply: oneshot::Sender<Result<Claimed, BusError>>,
    },
    /// Ack or nack one delivery.
    Answer {
        topic: Arc<str>,
        group_id: i64,
        seq: i64,
        attempt: u32,
        /// The message's key.
        key: Option<Arc<str>>,
        /// `None`: ack; `Some(delay)`: nack, deliverable again after it.
        nack: Option<Duration>,
        reply: Option<oneshot::Sender<Result<(), BusError>>>,
    },
    /// Finish what was queued before, return this instance's leases, close
    /// the connection, then answer.
    Close { reply: oneshot::Sender<()> },
    /// Return this instance's leases (inside the closing transaction).
    ReleaseLeases,
    /// Answer every parked claim empty after the commit in hand, so that
    /// its member claims again: another connection wrote to the
    /// database. Never part of a transaction.
    Wake,
}

impl Command {
    pub(super) fn messages(&self) -> usize {
        match self {
            Command::Publish { batch, .. } => batch.len(),
            _ => 1,
        }
    }
}

/// What one command did inside the transaction, delivered after commit.
pub(super) enum Outcome {
    Published(Result<(), BusError>),
    Joined(Joined),
    Claimed(Claimed),
    Done,
}

/// Sends each command its outcome; the claims that found nothing are
/// returned, to be parked.
pub(super) fn answer(
    batch: Vec<Command>,
    outcomes: Vec<Outcome>,
    returns: &mut Vec<Returned>,
) -> Vec<Parked> {
    let mut parked = Vec::new();
    for (command, outcome) in batch.into_iter().zip(outcomes) {
        match (command, outcome) {
            (Command::Publish { reply, permit, .. }, Outcome::Published(result)) => {
                drop(permit);
                let _ = reply.send(result);
            }
            (Command::Join { reply, .. }, Outcome::Joined(joined)) => {
                let _ = reply.send(Ok(joined));
            }
            (
                Command::Claim {
                    topic,
                    topic_id,
                    group_id,
                    max,
                    ack_deadline,
                    until,
                    reply,
                },
                Outcome::Claimed(claimed),
            ) => {
                let claim = Parked {
                    topic,
                    topic_id,
                    group_id,
                    max,
                    ack_deadline,
                    until,
                    reply,
                };
                parked.extend(claim.settle(claimed, returns));
            }
            (Command::Answer { reply, .. }, _) => {
                if let Some(reply) = reply {
                    let _ = reply.send(Ok(()));
                }
            }
            (
                Command::Leave { .. }
                | Command::Close { .. }
                | Command::ReleaseLeases
                | Command::Wake,
                _,
            ) => {}
            _ => unreachable!("each command has the outcome of its kind"),
        }
    }
    parked
}

/// Sends `command` the error that rolled its transaction back.
pub(super) fn fail(command: Command, error: BusError) {
    match command {
        Command::Publish { reply, .. } => {
            let _ = reply.send(Err(error));
        }
        Command::Join { reply, .. } => {
            let _ = reply.send(Err(error));
        }
        Command::Claim { reply, .. } => {
            let _ = reply.send(Err(error));
        }
        Command::Answer { reply, .. } => match reply {
            Some(reply) => {
                let _ = reply.send(Err(error));
            }
            None => {
                tracing::warn!(%error, "returning an unanswered delivery failed; it is delivered again at its ack deadline")
            }
        },
        Command::Leave { group_id } => {
            tracing::warn!(%error, group_id, "removing a private group failed; it expires later");
        }
        Command::Close { reply } => {
            let _ = reply.send(());
        }
        Command::ReleaseLeases => {
            tracing::warn!(%error, "returning the leases of a closing bus failed; they come back at their ack deadlines");
        }
        Command::Wake => {}
    }
}
