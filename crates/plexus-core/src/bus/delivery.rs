//! [`Delivery`]: one delivery of a message to a subscriber, answered by
//! [`ack`](Delivery::ack) or [`nack`](Delivery::nack).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::{BoxFuture, BusError};
use crate::Message;

/// How a backend takes a delivery's answer.
///
/// Called at most once per delivery, by [`Delivery::ack`] or
/// [`Delivery::nack`]; a delivery dropped unanswered calls neither (the
/// backend redelivers it at its ack deadline, or sooner if it learns of
/// the drop another way).
pub trait Acker: Send + Sync + 'static {
    /// The message was handled: never deliver it to this group again.
    /// Returns once the backend recorded it (durably, where it is
    /// persistent).
    fn ack(self: Box<Self>) -> BoxFuture<'static, Result<(), BusError>>;

    /// The message was not handled: deliver it again, no sooner than
    /// `delay`.
    fn nack(self: Box<Self>, delay: Duration) -> BoxFuture<'static, Result<(), BusError>>;
}

/// One delivery of a message (see [`Subscriber`](super::Subscriber) for
/// what ack, nack and dropping mean).
pub struct Delivery {
    message: Message,
    /// Shared with the subscription's other deliveries.
    topic: Arc<str>,
    attempt: u32,
    acker: Box<dyn Acker>,
}

impl Delivery {
    /// A delivery of `message` from `topic`, the `attempt`-th (1 for the
    /// first), answered through `acker`.
    pub fn new(
        message: Message,
        topic: impl Into<Arc<str>>,
        attempt: u32,
        acker: Box<dyn Acker>,
    ) -> Self {
        Delivery {
            message,
            topic: topic.into(),
            attempt,
            acker,
        }
    }

    /// The message.
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// The topic it was published to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Which delivery of the message this is to its group: 1 the first
    /// time, 2 after one nack or expired ack deadline, and so on.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Acknowledges: the message is done for this group. Errors when the
    /// backend could not confirm that it recorded it: the message may be
    /// delivered again (where the broker does not confirm acks, as with
    /// AMQP, an ack that failed as the connection went may also have been
    /// taken).
    pub async fn ack(self) -> Result<(), BusError> {
        self.acker.ack().await
    }

    /// Refuses: the message is delivered again, no sooner than `delay`.
    pub async fn nack(self, delay: Duration) -> Result<(), BusError> {
        self.acker.nack(delay).await
    }

    /// Splits the delivery into its message, topic, attempt and acker, for
    /// middleware that rebuilds it with [`Delivery::new`].
    pub fn into_parts(self) -> (Message, Arc<str>, u32, Box<dyn Acker>) {
        (self.message, self.topic, self.attempt, self.acker)
    }
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("topic", &self.topic)
            .field("id", &self.message.id())
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}
