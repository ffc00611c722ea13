//! [`ForeignClient`]: a client of the backend's broker written in another
//! language, for the `cloudevents_interop` scenario.

use plexus_core::Message;
use plexus_core::bus::{BoxFuture, BusError};

/// What a foreign client reads: the messages as it decoded them.
pub type Reading = BoxFuture<'static, Result<Vec<Message>, BusError>>;

/// A client of the broker in another language (say Python's
/// `confluent-kafka`), speaking the broker's CloudEvents binding in
/// binary content mode: attributes in the protocol's headers or
/// properties, the payload as the body.
pub trait ForeignClient: Send + Sync + 'static {
    /// The language and library, for messages (e.g. `Python nats-py`).
    fn name(&self) -> String;

    /// Publishes `messages` to `topic` with the foreign client, every
    /// attribute, key and header in the binding's binary content mode;
    /// returns once the broker accepted them.
    fn publish(
        &self,
        topic: &str,
        messages: Vec<Message>,
    ) -> BoxFuture<'static, Result<(), BusError>>;

    /// Starts reading `topic` with the foreign client. Resolves once it
    /// is subscribed (what is published after that reaches it) to the
    /// reading, which resolves to the first `count` messages it got, as
    /// it decoded them from the binding.
    fn read(&self, topic: &str, count: usize) -> BoxFuture<'static, Result<Reading, BusError>>;
}
