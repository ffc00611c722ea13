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

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};

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
///
/// Clones share one context (cloning is a reference count).
#[derive(Clone)]
pub struct CallContext {
    shared: Arc<Shared>,
}

/// What every clone of a [`CallContext`] shares.
struct Shared {
    deadline: Option<Deadline>,
    trace: LazyTrace,
    cancel: LazyToken,
}

/// A call's trace context, its random ids drawn when first read: most calls
/// never read them, and drawing them costs more than the rest of the
/// context.
struct LazyTrace {
    /// The incoming `traceparent`, continued by this call's span.
    parent: Option<TraceContext>,
    own: OnceLock<TraceContext>,
}

impl LazyTrace {
    fn get(&self) -> TraceContext {
        *self.own.get_or_init(|| {
            self.parent
                .map_or_else(TraceContext::new_root, |p| p.child())
        })
    }
}

/// A call's cancellation token, made when first asked for: most calls never
/// ask, and a token costs an allocation and a lock to make, to fire and to
/// drop. Once the call is over, a token made then is made cancelled.
#[derive(Default)]
struct LazyToken {
    token: OnceLock<CancellationToken>,
    /// Whether the call is over. Its lock orders `end` against a token being
    /// made: whichever takes it second fires the token.
    over: Mutex<bool>,
}

impl LazyToken {
    fn get(&self) -> &CancellationToken {
        let token = self.token.get_or_init(CancellationToken::new);
        if *self.over.lock().unwrap_or_else(|e| e.into_inner()) {
            token.cancel();
        }
        token
    }

    fn is_cancelled(&self) -> bool {
        self.token.get().map_or_else(
            || *self.over.lock().unwrap_or_else(|e| e.into_inner()),
            |t| t.is_cancelled(),
        )
    }

    fn end(&self) {
        *self.over.lock().unwrap_or_else(|e| e.into_inner()) = true;
        if let Some(token) = self.token.get() {
            token.cancel();
        }
    }
}

impl CallContext {
    /// A context for work that does not start from an incoming call (a
    /// command-line client, a test, a scheduled job).
    pub fn new(deadline: Option<Deadline>, trace: TraceContext) -> Self {
        let trace = LazyTrace {
            parent: None,
            own: OnceLock::from(trace),
        };
        CallContext::with_trace(deadline, trace)
    }

    /// The context of an incoming call: its trace continues `parent`, or
    /// starts a new trace without one.
    pub(crate) fn incoming(deadline: Option<Deadline>, parent: Option<TraceContext>) -> Self {
        let trace = LazyTrace {
            parent,
            own: OnceLock::new(),
        };
        CallContext::with_trace(deadline, trace)
    }

    fn with_trace(deadline: Option<Deadline>, trace: LazyTrace) -> Self {
        CallContext {
            shared: Arc::new(Shared {
                deadline,
                trace,
                cancel: LazyToken::default(),
            }),
        }
    }

    /// The context of the call this task is serving, if any.
    pub fn current() -> Option<CallContext> {
        CURRENT.try_with(Clone::clone).ok()
    }

    /// The deadline of the current call, if this task serves one that has one.
    pub fn current_deadline() -> Option<Deadline> {
        CURRENT.try_with(|c| c.deadline()).ok().flatten()
    }

    /// The context a handler was called with: read from the request's extensions.
    pub fn from_request<T>(request: &tonic::Request<T>) -> Option<&CallContext> {
        request.extensions().get::<CallContext>()
    }

    /// The call's deadline, if the caller set one.
    pub fn deadline(&self) -> Option<Deadline> {
        self.shared.deadline
    }

    /// The trace context of this call's server span.
    pub fn trace(&self) -> TraceContext {
        self.shared.trace.get()
    }

    /// The trace context the caller sent, if it sent one.
    pub(crate) fn parent_trace(&self) -> Option<TraceContext> {
        self.shared.trace.parent
    }

    /// The token that fires when the call is over.
    pub fn cancellation(&self) -> &CancellationToken {
        self.shared.cancel.get()
    }

    /// Marks the call over: fires its cancellation.
    fn end(&self) {
        self.shared.cancel.end();
    }

    /// Resolves when the call is over (cancelled, deadline passed, connection
    /// lost, or response finished).
    pub async fn cancelled(&self) {
        self.cancellation().cancelled().await
    }

    /// Whether the call is over.
    pub fn is_cancelled(&self) -> bool {
        self.shared.cancel.is_cancelled()
    }

    /// Runs `fut` with this context as the task's current context.
    pub fn scope<F: Future>(self, fut: F) -> tokio::task::futures::TaskLocalFuture<CallContext, F> {
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
        let cancel = self.cancellation().clone();
        let scoped = CURRENT.scope(self.clone(), fut);
        tokio::spawn(async move { cancel.run_until_cancelled(scoped).await })
    }
}

impl fmt::Debug for CallContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallContext")
            .field("deadline", &self.deadline())
            .field("trace", &self.trace())
            .field("cancel", self.cancellation())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_fires_when_the_call_ends_whenever_it_was_made() {
        let before = CallContext::incoming(None, None);
        let token = before.cancellation().clone();
        assert!(!before.is_cancelled());
        before.end();
        assert!(token.is_cancelled() && before.is_cancelled());

        let after = CallContext::incoming(None, None);
        after.end();
        assert!(after.is_cancelled());
        assert!(
            after.cancellation().is_cancelled(),
            "a token made after the end is cancelled"
        );
    }

    #[test]
    fn clones_share_the_trace_drawn_on_first_read() {
        let parent = TraceContext::new_root();
        let ctx = CallContext::incoming(None, Some(parent));
        let clone = ctx.clone();
        let trace = clone.trace();
        assert_eq!(ctx.trace(), trace);
        assert_eq!(trace.trace_id(), parent.trace_id());
        assert_ne!(trace.span_id(), parent.span_id());
    }
}
