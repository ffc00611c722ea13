//! [`Subscriber`]: receives the messages of a topic as [`Delivery`]s.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;

use super::{BoxFuture, BusError, Delivery, Features};

/// Where a new consumer group starts reading a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartFrom {
    /// Only messages published after the group is created.
    #[default]
    New,
    /// Every message the backend still retains, then new ones (backends
    /// without [`Features::replay`] start at new messages and say so in
    /// their error when `Earliest` is asked of them).
    Earliest,
}

/// How to subscribe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeOptions {
    /// The consumer group to join; `None`: a group of one, private to this
    /// subscription.
    pub group: Option<String>,
    /// Where the group starts if it does not exist yet (an existing group
    /// continues where it is).
    pub start: StartFrom,
    /// How long a delivery may stay unanswered before it is delivered
    /// again.
    pub ack_deadline: Duration,
    /// How many deliveries this subscription holds unanswered at most; the
    /// stream waits when it holds that many (backpressure).
    pub max_in_flight: usize,
    /// One member of the group at a time takes all of its messages, in
    /// the order the backend keeps them (every key's order with it); the
    /// others stand by and one of them takes over when it leaves or
    /// dies. An ack moves the group past a message once every earlier
    /// one was acked; a nack, or a delivery past its ack deadline,
    /// delivers that message and all that followed it again. For a
    /// relay, where order matters more than spreading the work: the
    /// backend keeps a position, not a record per message. Needs
    /// [`Features::exclusive_groups`] and a group.
    pub exclusive: bool,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        SubscribeOptions {
            group: None,
            start: StartFrom::New,
            ack_deadline: Duration::from_secs(30),
            max_in_flight: 64,
            exclusive: false,
        }
    }
}

impl SubscribeOptions {
    /// Options joining `group`, the rest default.
    pub fn group(group: impl Into<String>) -> Self {
        SubscribeOptions {
            group: Some(group.into()),
            ..SubscribeOptions::default()
        }
    }

    /// Starts a new group at the earliest retained message.
    pub fn from_earliest(mut self) -> Self {
        self.start = StartFrom::Earliest;
        self
    }

    /// Sets the ack deadline.
    pub fn ack_deadline(mut self, deadline: Duration) -> Self {
        self.ack_deadline = deadline;
        self
    }

    /// Makes the group exclusive (see [`SubscribeOptions::exclusive`]).
    pub fn exclusive(mut self) -> Self {
        self.exclusive = true;
        self
    }

    /// Sets how many deliveries may be unanswered at once.
    pub fn max_in_flight(mut self, max: usize) -> Self {
        self.max_in_flight = max;
        self
    }

    /// Checks the options against `features`: an error names what the
    /// backend cannot do.
    pub fn check(&self, backend: &str, features: &Features) -> Result<(), BusError> {
        if self.max_in_flight == 0 {
            return Err(BusError::invalid(
                "max_in_flight",
                "must be at least 1 (it bounds the unanswered deliveries of a subscription)",
            ));
        }
        if self.ack_deadline.is_zero() {
            return Err(BusError::invalid(
                "ack_deadline",
                "must be longer than zero",
            ));
        }
        if let Some(group) = &self.group
            && (group.is_empty() || group.len() > 200)
        {
            return Err(BusError::invalid(
                "group",
                "a group name is 1 to 200 characters",
            ));
        }
        if self.group.is_some() && !features.consumer_groups {
            return Err(BusError::Unsupported {
                backend: backend.to_owned(),
                what: "consumer groups".to_owned(),
            });
        }
        if self.exclusive && self.group.is_none() {
            return Err(BusError::invalid(
                "exclusive",
                "an exclusive subscription needs a group (a subscription without one is alone in its group already)",
            ));
        }
        if self.exclusive && !features.exclusive_groups {
            return Err(BusError::Unsupported {
                backend: backend.to_owned(),
                what: "exclusive consumer groups".to_owned(),
            });
        }
        if self.start == StartFrom::Earliest && !features.replay {
            return Err(BusError::Unsupported {
                backend: backend.to_owned(),
                what: "starting a group at the earliest retained message".to_owned(),
            });
        }
        Ok(())
    }
}

/// Receives the messages of topics.
///
/// # Contract
///
/// - **Thread safety.** A subscriber is shared: `subscribe` may be called
///   concurrently; each call is a new member of its group.
/// - **Stream.** The [`Subscription`] yields deliveries as messages become
///   available and ends only when the subscriber is closed (or yields an
///   error, after which it ends). At most
///   [`max_in_flight`](SubscribeOptions::max_in_flight) deliveries are
///   unanswered at once: the stream waits for answers before yielding
///   more.
/// - **Answers.** Each [`Delivery`] is answered once: `ack` (done, never
///   delivered to this group again) or `nack(delay)` (delivered again, to
///   any member, no sooner than `delay`). A delivery dropped unanswered,
///   or unanswered past the ack deadline, is delivered again; its ack or
///   nack after that is ignored.
/// - **Order.** With [`Features::per_key_order`], the deliveries of one
///   key reach a group in publish order, and the next message of a key is
///   not delivered while an earlier one of that key is unanswered in the
///   group (so a redelivery keeps its place).
/// - **Dropping** the subscription leaves the group: its unanswered
///   deliveries go to other members (immediately, or at their ack
///   deadline).
/// - **Close.** [`close`](Self::close) ends every subscription of this
///   subscriber; answers given after it are ignored (the messages are
///   delivered again later).
pub trait Subscriber: Send + Sync + 'static {
    /// Joins `options.group` (or a group of one) on `topic`. Errors: the
    /// options ask for what the backend lacks, the topic name is invalid,
    /// the backend is unreachable or closed.
    fn subscribe<'a>(
        &'a self,
        topic: &'a str,
        options: SubscribeOptions,
    ) -> BoxFuture<'a, Result<Subscription, BusError>>;

    /// Ends every subscription and releases the backend.
    fn close(&self) -> BoxFuture<'_, Result<(), BusError>>;

    /// What the backend guarantees.
    fn features(&self) -> Features;
}

/// The deliveries of one subscription (see [`Subscriber`]).
pub struct Subscription {
    inner: Pin<Box<dyn Stream<Item = Result<Delivery, BusError>> + Send>>,
}

impl Subscription {
    /// Wraps a backend's stream of deliveries.
    pub fn new(stream: impl Stream<Item = Result<Delivery, BusError>> + Send + 'static) -> Self {
        Subscription {
            inner: Box::pin(stream),
        }
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription").finish_non_exhaustive()
    }
}

impl Stream for Subscription {
    type Item = Result<Delivery, BusError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}
