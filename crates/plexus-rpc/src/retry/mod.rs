//! Retries for idempotent calls, for gRPC and HTTP clients alike: never a
//! retry of a call that is not declared safe to repeat, never one past the
//! call's deadline, and never more than the retry budget allows.
//!
//! [`Retry`] wraps any `tower::Service<http::Request<B>>` — a
//! [`client::Channel`](crate::client::Channel), a balancer, an HTTP client —
//! and, for each call:
//!
//! 1. **Idempotent only.** A call is retried only when [`Idempotency`]
//!    allows it: gRPC methods named in the configuration or declared
//!    `idempotency_level = IDEMPOTENT` / `NO_SIDE_EFFECTS` in a descriptor
//!    pool; HTTP `GET`, `HEAD`, `OPTIONS`, `PUT`, `DELETE` and the
//!    configured routes. Any other call goes straight through.
//! 2. **Replayable body.** A retried request's body is read into memory
//!    first, up to [`RetryPolicy::max_replay_bytes`]; each attempt sends a
//!    copy. A larger body is sent once and never retried. The body type
//!    must implement [`ReplayBody`] (done for `tonic` and `axum` bodies).
//! 3. **Retryable outcomes.**
//!    - gRPC `UNAVAILABLE` (a status sent with the response headers, or a
//!      transport failure): retried.
//!    - gRPC `RESOURCE_EXHAUSTED`: retried only when the server says when,
//!      with `grpc-retry-pushback-ms`; without it the cause is usually a
//!      message over a size limit or a quota that a retry only makes worse.
//!      A pushback that is not a whole number of milliseconds means "do not
//!      retry", as gRPC's retry design says.
//!    - gRPC `DEADLINE_EXCEEDED`, or an attempt that ran out of its
//!      [per-attempt timeout](RetryPolicy::per_attempt_timeout): retried
//!      only when the call's own deadline still leaves, after the backoff,
//!      a whole per-attempt timeout (any time at all without one). Without
//!      a per-attempt timeout the attempt's deadline *is* the call's, so
//!      when it passes there is no room and nothing is retried.
//!    - HTTP 502, 503 and 504, and connection failures; 503 and 429 with a
//!      `Retry-After` in seconds wait that long (429 is retried only then).
//!    - A rejection by an open [circuit breaker](crate::breaker) is never
//!      retried: the breaker said the callee needs rest.
//!    - A gRPC status that arrives in the trailers, after the response
//!      began, is not retried: the response has already been handed on.
//! 4. **Backoff** with full jitter ([`Backoff`]): before retry `n`, a wait
//!    drawn from `[0, min(max, base × 2^(n-1))]`; a server's pushback or
//!    `Retry-After` replaces it. At most [`RetryPolicy::max_attempts`].
//! 5. **Budget**: tower's [`TpsBudget`](tower::retry::budget::TpsBudget).
//!    Every call deposits, every retry withdraws; a retry the budget cannot
//!    pay for is not sent. So under a total outage retries stay a bounded
//!    share of traffic (20 % plus a small floor by default) instead of
//!    multiplying the load on a struggling callee.
//! 6. **Deadline**: the call's deadline is the earlier of the current
//!    call's ([`CallContext::current_deadline`](crate::CallContext::current_deadline))
//!    and the request's own `grpc-timeout` (gRPC) or `plexus-timeout-ms`
//!    (HTTP). Each attempt carries what is left of it (or of its
//!    per-attempt timeout), written when the attempt is sent; an attempt
//!    is given up when that passes; a retry whose backoff would end at or
//!    after the deadline is not made, and the last outcome is returned.
//!
//! Place `Retry` above the [circuit breaker](crate::breaker) and the
//! [balancer](crate::balance), so each attempt is counted by the breaker
//! and may go to another endpoint:
//!
//! ```no_run
//! use std::time::Duration;
//! use plexus_rpc::breaker::{BreakerConfig, CircuitBreakerLayer};
//! use plexus_rpc::client::ClientBuilder;
//! use plexus_rpc::echo::v1::{EchoRequest, echo_client::EchoClient};
//! use plexus_rpc::retry::{Backoff, Idempotency, RetryLayer, RetryPolicy};
//! use tower::ServiceBuilder;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let channel = ClientBuilder::new("http://127.0.0.1:50051").connect().await?;
//! let policy = RetryPolicy::new()
//!     .max_attempts(4)
//!     .backoff(Backoff::new(Duration::from_millis(20), Duration::from_millis(500)))
//!     .idempotency(Idempotency::new().grpc_method("/plexus.echo.v1.Echo/Unary"));
//! let breaker = CircuitBreakerLayer::new(BreakerConfig::new());
//! let circuit = breaker.circuit(); // its state, for metrics
//! let stack = ServiceBuilder::new()
//!     .layer(RetryLayer::new(policy))
//!     .layer(breaker)
//!     .service(channel);
//! let mut echo = EchoClient::new(stack);
//! let mut request = tonic::Request::new(EchoRequest { payload: "hi".into() });
//! request.set_timeout(Duration::from_millis(300)); // shared by all attempts
//! let reply = echo.unary(request).await?;
//! println!("{:?}, circuit {:?}", reply.into_inner(), circuit.state());
//! # Ok(()) }
//! ```

mod attempts;
mod backoff;
mod body;
mod classify;
mod future;
mod idempotency;
mod layer;
mod policy;

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use plexus_core::Deadline;
use plexus_core::deadline::{TIMEOUT_HEADER, parse_grpc_timeout};
use tower::retry::budget::Budget;
use tower_service::Service;

pub use backoff::Backoff;
pub use body::{Chain, Replay, ReplayBody};
pub use classify::PUSHBACK_HEADER;
pub use future::ResponseFuture;
pub use idempotency::{Idempotency, MAX_ENTRIES};
pub use layer::RetryLayer;
pub use policy::{MAX_ATTEMPTS, MAX_REPLAY_BYTES, RetryPolicy};

pub(crate) use classify::is_grpc;

use crate::context::CallContext;
use crate::headers::GRPC_TIMEOUT;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Retries idempotent calls on retryable outcomes, within a budget and the
/// call's deadline. See the [module documentation](self).
#[derive(Debug, Clone)]
pub struct Retry<S> {
    inner: S,
    policy: Arc<RetryPolicy>,
}

impl<S> Retry<S> {
    /// Wraps `inner` with `policy`.
    pub fn new(inner: S, policy: RetryPolicy) -> Self {
        Retry {
            inner,
            policy: Arc::new(policy),
        }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, B, R> Service<Request<B>> for Retry<S>
where
    S: Service<Request<B>, Response = Response<R>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: ReplayBody,
    B::Error: Into<BoxError>,
    R: Send + 'static,
{
    type Response = Response<R>;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, Response<R>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        self.policy.budget.deposit();
        let grpc = is_grpc(request.headers());
        if self.policy.max_attempts <= 1
            || !self
                .policy
                .idempotency
                .allows(grpc, request.method(), request.uri().path())
        {
            return ResponseFuture::once(self.inner.call(request));
        }
        let call = attempts::Call {
            policy: Arc::clone(&self.policy),
            grpc,
            deadline: Deadline::earliest(
                CallContext::current_deadline(),
                requested_deadline(&request, grpc),
            ),
        };
        // The service that was made ready serves the first attempt.
        let fresh = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, fresh);
        ResponseFuture::retrying(Box::pin(call.run(ready, request)))
    }
}

/// The deadline the request itself carries.
fn requested_deadline<B>(request: &Request<B>, grpc: bool) -> Option<Deadline> {
    if grpc {
        let value = request.headers().get(&GRPC_TIMEOUT)?.to_str().ok()?;
        parse_grpc_timeout(value).ok().map(Deadline::after)
    } else {
        let value = request.headers().get(TIMEOUT_HEADER)?.to_str().ok()?;
        Deadline::from_timeout_ms(value).ok()
    }
}
