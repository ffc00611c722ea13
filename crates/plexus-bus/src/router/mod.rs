//! [`Router`]: runs message handlers on subscriptions.
//!
//! A route is a topic, subscription options and a handler — a tower
//! `Service` from an [`Incoming`] message to the [`Outgoing`] messages it
//! produces. For every delivery the router waits for the handler to be
//! ready, calls it (in delivery order, so layers such as
//! [`KeyLanesLayer`] see the order), and runs the call on its own task;
//! when the call succeeds the outputs are published and then the input is
//! acknowledged, when it fails the input is nacked and comes again.
//! In-flight work is bounded by the route's
//! [`max_in_flight`](SubscribeOptions::max_in_flight).
//!
//! Middleware are tower layers: [`RetryLayer`] (retries in process with
//! exponential backoff), [`DeadLetterLayer`] (after N deliveries, or at
//! once for an expired message, the message goes to a dead-letter topic
//! with the error), [`DeadlineLayer`] (expired messages are not handled),
//! [`KeyLanesLayer`] (one key at a time, keys in parallel), and tower's own
//! timeout and concurrency limit.
//!
//! Shutdown is an argument of [`Router::run`]: the router stops taking
//! deliveries, waits for calls in progress (at most
//! [`Router::drain_timeout`]), acknowledges what finished and drops the
//! rest unanswered, to be delivered again.

mod dead_letter;
mod deadline;
mod handler;
mod lanes;
mod retry;
mod run;
mod running;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use plexus_core::bus::{BusError, Publisher, SubscribeOptions, Subscriber};
use tower::util::BoxCloneService;
use tower::{BoxError, ServiceExt as _};

pub use dead_letter::{DeadLetter, DeadLetterLayer, headers as dead_letter_headers};
pub use deadline::{Deadline, DeadlineLayer, Expired, message_deadline};
pub use handler::{Handler, HandlerFn, Incoming, Outgoing, handler_fn};
pub use lanes::{KeyLanes, KeyLanesLayer};
pub use retry::{Backoff, RetryLayer};
pub use running::{NeverRan, Running};

/// A route's handler, boxed.
type BoxHandler = BoxCloneService<Incoming, Vec<Outgoing>, BoxError>;

struct Route {
    name: String,
    topic: String,
    options: SubscribeOptions,
    handler: BoxHandler,
}

/// Runs handlers on subscriptions (see the module documentation).
pub struct Router {
    subscriber: Arc<dyn Subscriber>,
    publisher: Arc<dyn Publisher>,
    routes: Vec<Route>,
    drain_timeout: Duration,
    nack_delay: Duration,
    state: tokio::sync::watch::Sender<running::State>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let routes: Vec<(&str, &str)> = self
            .routes
            .iter()
            .map(|r| (r.name.as_str(), r.topic.as_str()))
            .collect();
        f.debug_struct("Router").field("routes", &routes).finish()
    }
}

/// Why a router stopped before its shutdown.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RouterError {
    /// Two routes share a name.
    #[error("two routes are named `{0}`; route names must be unique")]
    DuplicateRoute(String),
    /// A route could not subscribe or its subscription failed.
    #[error("route `{route}` on topic `{topic}`: {source}")]
    Subscription {
        /// The route.
        route: String,
        /// Its topic.
        topic: String,
        /// What failed.
        source: BusError,
    },
    /// A route's handler failed to become ready (its service is broken).
    #[error("route `{route}`: the handler cannot take messages: {source}")]
    Handler {
        /// The route.
        route: String,
        /// What the handler said.
        source: BoxError,
    },
}

impl Router {
    /// A router taking deliveries from `subscriber` and publishing handler
    /// outputs (and dead letters) with `publisher`.
    pub fn new(subscriber: Arc<dyn Subscriber>, publisher: Arc<dyn Publisher>) -> Self {
        Router {
            subscriber,
            publisher,
            routes: Vec::new(),
            drain_timeout: Duration::from_secs(10),
            nack_delay: Duration::from_millis(100),
            state: tokio::sync::watch::Sender::new(running::State::default()),
        }
    }

    /// Adds a route: `handler` on `topic` with `options` (its group, ack
    /// deadline and in-flight bound). The name identifies the route in
    /// logs, errors and dead letters.
    pub fn route<H: Handler>(
        mut self,
        name: impl Into<String>,
        topic: impl Into<String>,
        options: SubscribeOptions,
        handler: H,
    ) -> Self {
        self.routes.push(Route {
            name: name.into(),
            topic: topic.into(),
            options,
            handler: BoxCloneService::new(handler.map_err(Into::into)),
        });
        self
    }

    /// How long shutdown waits for calls in progress (default 10 s).
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// How long a failed message waits before it is delivered again
    /// (default 100 ms; the backend's `nack(delay)`).
    pub fn nack_delay(mut self, delay: Duration) -> Self {
        self.nack_delay = delay;
        self
    }

    /// The publisher the router publishes with.
    pub fn publisher(&self) -> Arc<dyn Publisher> {
        Arc::clone(&self.publisher)
    }

    /// A signal that resolves once [`run`](Self::run) has subscribed
    /// every route (taken before `run`, which consumes the router): what
    /// is published after it reaches the routes.
    pub fn running(&self) -> Running {
        Running::new(self.state.subscribe(), self.routes.len())
    }

    /// Runs every route until `shutdown` completes (then drains, see the
    /// module documentation) or a route fails.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), RouterError> {
        let mut names: Vec<&str> = self.routes.iter().map(|r| r.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            self.state.send_modify(|s| s.stopped = true);
            return Err(RouterError::DuplicateRoute(w[0].to_owned()));
        }
        let state = self.state.clone();
        let result = run::run(self, shutdown).await;
        state.send_modify(|s| s.stopped = true);
        result
    }
}
