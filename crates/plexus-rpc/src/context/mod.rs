//! The call context: deadline, trace context and cancellation of the call
//! being served, visible to its handler and carried onto every call the
//! handler makes.
//!
//! [`ContextLayer`] builds a [`CallContext`] for every incoming call:
//!
//! - an incoming `grpc-timeout` becomes the call's [`Deadline`]; a call whose
//!   deadline has already passed is answered `DEADLINE_EXCEEDED` without
//!   running its handler, and a call still running when its deadline passes
//!   is stopped with `DEADLINE_EXCEEDED` (a stream ends with that status);
//! - an incoming W3C `traceparent` is continued (a new span id in the same
//!   trace) and recorded on a `tracing` span; without one, a new trace starts;
//! - the context's cancellation fires as soon as the call is over for any
//!   reason: the client cancelled or reset the stream, the connection
//!   dropped, the deadline passed, or the response finished.
//!
//! The handler's future runs with the context installed as the task's
//! current context ([`CallContext::current`]), which the client layer reads to
//! propagate the remaining deadline and the trace to outgoing calls. Work the
//! handler spawns should go through [`CallContext::spawn`] so it carries the
//! context and stops with the call.

mod body;
mod future;
mod layer;

use std::future::Future;

use plexus_core::{Deadline, TraceContext};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use body::ContextBody;
pub use future::ResponseFuture;
pub use layer::{Context, ContextLayer};

tokio::task_local! {
    static CURRENT: CallContext;
}

/// What a handler knows about the call it serves, and what it passes on.
#[derive(Debug, Clone)]
pub struct CallContext {
    deadline: Option<Deadline>,
    trace: TraceContext,
    cancel: CancellationToken,
}

impl CallContext {
    /// A context for work that does not start from an incoming call (a
    /// command-line client, a test, a scheduled job).
    pub fn new(deadline: Option<Deadline>, trace: TraceContext) -> Self {
        CallContext {
            deadline,
            trace,
            cancel: CancellationToken::new(),
        }
    }

    pub(crate) fn with_token(
        deadline: Option<Deadline>,
        trace: TraceContext,
        cancel: CancellationToken,
    ) -> Self {
        CallContext {
            deadline,
            trace,
            cancel,
        }
    }

    /// The context of the call this task is serving, if any.
    pub fn current() -> Option<CallContext> {
        CURRENT.try_with(Clone::clone).ok()
    }

    /// The deadline of the current call, if this task serves one that has one.
    pub fn current_deadline() -> Option<Deadline> {
        CURRENT.try_with(|c| c.deadline).ok().flatten()
    }

    /// The context a handler was called with: read from the request's extensions.
    pub fn from_request<T>(request: &tonic::Request<T>) -> Option<&CallContext> {
        request.extensions().get::<CallContext>()
    }

    /// The call's deadline, if the caller set one.
    pub fn deadline(&self) -> Option<Deadline> {
        self.deadline
    }

    /// The trace context of this call's server span.
    pub fn trace(&self) -> TraceContext {
        self.trace
    }

    /// The token that fires when the call is over.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Resolves when the call is over (cancelled, deadline passed, connection
    /// lost, or response finished).
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await
    }

    /// Whether the call is over.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Runs `fut` with this context as the task's current context.
    pub fn scope<F: Future>(self, fut: F) -> impl Future<Output = F::Output> {
        CURRENT.scope(self, fut)
    }

    /// Spawns `fut` with this context as its current context; the task is
    /// stopped (its future dropped) when the call is over. The handle yields
    /// `None` when the task was stopped that way.
    pub fn spawn<F>(&self, fut: F) -> JoinHandle<Option<F::Output>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let cancel = self.cancel.clone();
        let scoped = CURRENT.scope(self.clone(), fut);
        tokio::spawn(async move { cancel.run_until_cancelled(scoped).await })
    }
}
