//! [`Publisher`]: sends messages to a topic.

use super::{BoxFuture, BusError, Features};
use crate::Message;

/// Sends messages to topics.
///
/// # Contract
///
/// - **Thread safety.** A publisher is shared: `publish` may be called
///   concurrently from many tasks; concurrent batches are not interleaved
///   within a key's order (see below) but have no order between them.
/// - **Durability.** [`publish`](Self::publish) returns `Ok` only after
///   the backend has durably accepted *every* message of the batch, as
///   durable as the backend is ([`Features::persistent`]): on disk with
///   fsync for SQLite, confirmed by the broker for RabbitMQ, NATS and
///   Kafka, committed for PostgreSQL, in the topic's log for the in-memory
///   backend. An accepted message is delivered to every group, at least
///   once.
/// - **Failure.** On `Err`, any prefix of the batch may have been accepted
///   (and will be delivered); publishing the batch again is safe only for
///   idempotent consumers (every message keeps its id, so an inbox
///   dedupes). The error says which topic and why.
/// - **Order.** Messages of one batch, and of successive `publish` calls
///   awaited one after the other, are stored in that order. Backends with
///   [`Features::per_key_order`] deliver the messages of one
///   [key](Message::key) in that order within a group.
/// - **Bounds.** A message larger than [`Features::max_message_bytes`] or
///   a batch the backend cannot take at once is refused with
///   [`BusError::TooLarge`] / [`BusError::Full`] before anything of it is
///   accepted; the publisher never buffers without bound.
/// - **Close.** [`close`](Self::close) waits for publishes in progress to
///   finish (flushing what the backend buffers), then releases the
///   connection; later calls fail with [`BusError::Closed`]. Dropping a
///   publisher without closing it releases it too, without waiting.
pub trait Publisher: Send + Sync + 'static {
    /// Publishes `batch` to `topic`, returning once all of it is durably
    /// accepted (see the trait documentation). An empty batch is a no-op.
    fn publish<'a>(
        &'a self,
        topic: &'a str,
        batch: Vec<Message>,
    ) -> BoxFuture<'a, Result<(), BusError>>;

    /// Finishes publishes in progress and releases the backend.
    fn close(&self) -> BoxFuture<'_, Result<(), BusError>>;

    /// What the backend guarantees.
    fn features(&self) -> Features;
}
