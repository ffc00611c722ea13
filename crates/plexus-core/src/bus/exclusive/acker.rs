//! The answer to one delivery of an exclusive group, sent to its holder.

use std::time::Duration;

use crate::bus::{Acker, BoxFuture, BusError};
use tokio::sync::{mpsc, oneshot};

/// An answer to the delivery numbered `number` of read round `round`.
pub(crate) struct Answer {
    pub(crate) round: u64,
    pub(crate) number: u64,
    /// `None`: ack; `Some(delay)`: nack.
    pub(crate) nack: Option<Duration>,
    /// A nack's: told once the holder started the new round.
    pub(crate) reply: Option<oneshot::Sender<()>>,
}

/// Answers one delivery through its holder; dropped unanswered, it is a
/// nack without delay.
pub(crate) struct ExclusiveAcker {
    pub(crate) answers: mpsc::Sender<Answer>,
    pub(crate) round: u64,
    pub(crate) number: u64,
    pub(crate) backend: std::sync::Arc<str>,
    pub(crate) answered: bool,
}

impl ExclusiveAcker {
    /// Sends the answer to the holder, which takes answers in order and
    /// records every one sent before it writes the group's position or
    /// lets the group go. An ack returns once sent (no round trip per
    /// delivery); a nack once the holder started the new round, so that
    /// what the stream yields after it is the new round's.
    async fn answer(mut self: Box<Self>, nack: Option<Duration>) -> Result<(), BusError> {
        self.answered = true;
        let (reply, replied) = match nack {
            Some(_) => {
                let (reply, replied) = oneshot::channel();
                (Some(reply), Some(replied))
            }
            None => (None, None),
        };
        let answer = Answer {
            round: self.round,
            number: self.number,
            nack,
            reply,
        };
        if self.answers.send(answer).await.is_err() {
            // The subscription ended: its group did not move past this
            // message, so a nack holds (it comes again); an ack did not
            // happen.
            return match nack {
                Some(_) => Ok(()),
                None => Err(BusError::Closed {
                    backend: self.backend.to_string(),
                    what: "subscriber",
                }),
            };
        }
        if let Some(replied) = replied {
            // Dropped unanswered only when the holder ended, which holds
            // the nack too.
            let _ = replied.await;
        }
        Ok(())
    }
}

impl Acker for ExclusiveAcker {
    fn ack(self: Box<Self>) -> BoxFuture<'static, Result<(), BusError>> {
        Box::pin(self.answer(None))
    }

    fn nack(self: Box<Self>, delay: Duration) -> BoxFuture<'static, Result<(), BusError>> {
        Box::pin(self.answer(Some(delay)))
    }
}

impl Drop for ExclusiveAcker {
    fn drop(&mut self) {
        if !self.answered {
            // If the queue is full, the delivery comes again at its ack
            // deadline.
            let _ = self.answers.try_send(Answer {
                round: self.round,
                number: self.number,
                nack: Some(Duration::ZERO),
                reply: None,
            });
        }
    }
}
