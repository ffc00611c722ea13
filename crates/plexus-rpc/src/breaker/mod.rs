//! A circuit breaker for gRPC and HTTP clients: when a callee keeps
//! failing, stop calling it for a while instead of piling more load on it
//! and making every caller wait for its failures.
//!
//! A [`Circuit`] is **closed** at first: calls go through and their
//! outcomes are measured over a sliding [`Window`] (the last N calls, or
//! the last T of time). When at least [`minimum_calls`] are in the window
//! and the share of failures reaches the [`failure_rate`], it **opens**:
//! calls are rejected at once, without being sent — gRPC calls with
//! `UNAVAILABLE`, HTTP calls with a [`CircuitOpen`] error (503) — with a
//! message saying why and when the cool-down ends. After the cool-down
//! ([`open_for`]) it is **half-open**: up to [`probes`] calls go through
//! and the rest are rejected; when all probes succeed it closes (with an
//! empty window), and as soon as one fails it opens again for another
//! cool-down.
//!
//! Failures: gRPC `UNAVAILABLE`, `DEADLINE_EXCEEDED`, `INTERNAL`,
//! `UNKNOWN`, `DATA_LOSS`, `RESOURCE_EXHAUSTED` and transport errors; HTTP
//! 5xx and transport errors. Other gRPC codes and HTTP statuses are
//! answers from a working callee and count as successes. A cancelled call
//! counts as nothing. A gRPC status is read from the response headers
//! (where a call that fails before its first message carries it); one
//! sent in the trailers after messages is not seen.
//!
//! [`Circuit::state`] and [`Circuit::stats`] expose the state for metrics.
//! See [`crate::retry`] for stacking the breaker under retries.
//!
//! [`minimum_calls`]: BreakerConfig::minimum_calls
//! [`failure_rate`]: BreakerConfig::failure_rate
//! [`open_for`]: BreakerConfig::open_for
//! [`probes`]: BreakerConfig::probes

mod circuit;
mod classify;
mod config;
mod error;
mod future;
mod layer;
mod window;

use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

pub use circuit::{Circuit, CircuitState, CircuitStats};
pub use config::{BreakerConfig, MAX_PROBES, MAX_WINDOW_CALLS, Window};
pub use error::{CIRCUIT_METADATA, CircuitOpen};
pub use future::ResponseFuture;
pub use layer::CircuitBreakerLayer;

use crate::retry::is_grpc;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Rejects calls while its [`Circuit`] is open. See the
/// [module documentation](self).
#[derive(Debug, Clone)]
pub struct CircuitBreaker<S> {
    inner: S,
    circuit: Circuit,
}

impl<S> CircuitBreaker<S> {
    /// Wraps `inner` with a new circuit.
    pub fn new(inner: S, config: BreakerConfig) -> Self {
        CircuitBreaker::with_circuit(inner, Circuit::new(config))
    }

    /// Wraps `inner` with an existing circuit (shared with its other
    /// services).
    pub fn with_circuit(inner: S, circuit: Circuit) -> Self {
        CircuitBreaker { inner, circuit }
    }

    /// The circuit.
    pub fn circuit(&self) -> &Circuit {
        &self.circuit
    }
}

impl<S, B, R> Service<Request<B>> for CircuitBreaker<S>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Error: Into<BoxError>,
{
    type Response = Response<R>;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let grpc = is_grpc(request.headers());
        match self.circuit.try_acquire() {
            Ok(permit) => ResponseFuture::sent(self.inner.call(request), permit, grpc),
            Err(open) if grpc => ResponseFuture::rejected(open.to_status().into()),
            Err(open) => ResponseFuture::rejected(open.into()),
        }
    }
}
