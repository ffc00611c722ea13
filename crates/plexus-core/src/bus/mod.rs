//! The asynchronous messaging contract: [`Publisher`], [`Subscriber`],
//! [`Delivery`] and the [`Features`] a backend declares.
//!
//! Every plexus bus backend (in-memory, SQLite, PostgreSQL, NATS JetStream,
//! RabbitMQ, Kafka) implements these two traits and passes the one
//! conformance suite (`plexus-conformance`); the doc comments here are the
//! contract that suite checks.
//!
//! # Delivery guarantee
//!
//! At least once. A message is handed to a subscriber until one delivery of
//! it is [acknowledged](Delivery::ack) within its group; a delivery that is
//! [nacked](Delivery::nack), dropped unanswered, or not answered within the
//! ack deadline is delivered again (to the same or another member of the
//! group) with [`Delivery::attempt`] one higher. Handlers must therefore be
//! idempotent, or use an inbox.
//!
//! # Groups
//!
//! Subscribers name a consumer group in [`SubscribeOptions::group`]. Each
//! group receives every message published to the topic after the group
//! began (or every retained one, with [`StartFrom::Earliest`]); the
//! members of one group share the messages (competing consumers): each
//! message is delivered to one member at a time. A subscriber without a
//! group is a group of its own.

mod delivery;
mod error;
pub mod exclusive;
mod features;
mod inbox;
mod limits;
mod publisher;
mod subscriber;

use std::future::Future;
use std::pin::Pin;

pub use delivery::{Acker, Delivery};
pub use error::BusError;
pub use features::Features;
pub use inbox::{Seen, check_consumer};
pub use limits::{MAX_TOPIC_BYTES, check_topic, message_size};
pub use publisher::Publisher;
pub use subscriber::{StartFrom, SubscribeOptions, Subscriber, Subscription};

/// A boxed, sendable future: the return type of the bus traits' methods,
/// which keeps the traits usable as `dyn Publisher` / `dyn Subscriber`
/// (a backend chosen at run time from a URL).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
