//! What a message handler takes and gives: [`Incoming`] → [`Outgoing`]s,
//! and [`handler_fn`] to make a plain async fn one.

use std::future::Future;
use std::task::{Context, Poll};

use plexus_core::Message;
use tower::BoxError;

/// A message handed to a handler.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The message.
    pub message: Message,
    /// The topic it came from.
    pub topic: std::sync::Arc<str>,
    /// Which delivery of it this is to the route's group (1 the first
    /// time).
    pub attempt: u32,
}

/// A message a handler produces, and the topic it goes to. The router
/// publishes every output before it acknowledges the input.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The destination topic.
    pub topic: String,
    /// The message.
    pub message: Message,
}

impl Outgoing {
    /// `message` for `topic`.
    pub fn new(topic: impl Into<String>, message: Message) -> Self {
        Outgoing {
            topic: topic.into(),
            message,
        }
    }
}

/// A handler: a tower `Service` from an [`Incoming`] message to the
/// messages it produces. `Err` means "not handled": the message is
/// delivered again (or dead-lettered, under
/// [`DeadLetterLayer`](super::DeadLetterLayer)).
pub trait Handler:
    tower::Service<Incoming, Response = Vec<Outgoing>, Error = BoxError, Future: Send>
    + Clone
    + Send
    + 'static
{
}

impl<S> Handler for S where
    S: tower::Service<Incoming, Response = Vec<Outgoing>, Error = BoxError, Future: Send>
        + Clone
        + Send
        + 'static
{
}

/// A handler made of an async fn (`async fn(Incoming) -> Result<Vec<Outgoing>, E>`).
pub fn handler_fn<F, Fut, E>(f: F) -> HandlerFn<F>
where
    F: Fn(Incoming) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<Vec<Outgoing>, E>> + Send + 'static,
    E: Into<BoxError>,
{
    HandlerFn { f }
}

/// The handler [`handler_fn`] makes.
#[derive(Debug, Clone, Copy)]
pub struct HandlerFn<F> {
    f: F,
}

impl<F, Fut, E> tower::Service<Incoming> for HandlerFn<F>
where
    F: Fn(Incoming) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<Vec<Outgoing>, E>> + Send + 'static,
    E: Into<BoxError>,
{
    type Response = Vec<Outgoing>;
    type Error = BoxError;
    type Future = futures::future::MapErr<Fut, fn(E) -> BoxError>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, incoming: Incoming) -> Self::Future {
        use futures::TryFutureExt as _;
        (self.f)(incoming).map_err(Into::into as fn(E) -> BoxError)
    }
}
