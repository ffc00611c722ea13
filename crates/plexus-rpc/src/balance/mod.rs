//! Client-side load balancing across several endpoints, for gRPC and HTTP
//! clients alike: tower's power-of-two-choices balancer on PeakEwma
//! latency, over the endpoints that pass their health checks.
//!
//! - **Choice**: for each call, [`tower::balance::p2c`] picks two ready
//!   endpoints at random and sends to the one with the lower
//!   [`PeakEwma`](tower::load::PeakEwma) cost (its recent latency, quick
//!   to rise on a slow answer and slow to fall, times its calls in
//!   flight). A slow endpoint thus gets little traffic without being cut
//!   off, and is measured again as it recovers. An endpoint entering the
//!   balancer (at start, or back from an ejection) has no measurement yet:
//!   it starts at the average latency of the whole fleet (the configured
//!   default before any answer), so it is neither starved nor flooded.
//! - **Health**: a background task runs every endpoint's [`HealthCheck`] —
//!   the standard `grpc.health.v1` `Check` ([`HealthCheck::grpc`]), or any
//!   async function ([`HealthCheck::new`]) — every interval. An endpoint
//!   that fails is removed from the balancer (a `tower::discover::Change`)
//!   and gets no calls until a check passes again. [`Health`] shows each
//!   endpoint's state. When no endpoint is healthy, calls fail at once
//!   (gRPC `UNAVAILABLE`, or [`NoHealthyEndpoint`]) instead of waiting.
//! - **Bounds**: at most [`max_endpoints`](BalanceBuilder::max_endpoints)
//!   endpoints, [`max_in_flight`](BalanceBuilder::max_in_flight) calls per
//!   endpoint; when every endpoint is at its bound, `poll_ready` waits
//!   (back-pressure).
//!
//! A [`Balance`] is one service, not `Clone`: share it through
//! [`tower::buffer::Buffer`] (bounded). A buffer's worker runs calls on its
//! own task, outside the caller's [`CallContext`](crate::CallContext): put
//! the [`PropagateLayer`](crate::client::PropagateLayer) (and the
//! [retry](crate::retry) layer, which writes each attempt's deadline into
//! the request) *above* the buffer so the deadline and trace still travel.
//!
//! ```no_run
//! use std::time::Duration;
//! use plexus_rpc::balance::{Balance, HealthCheck};
//! use plexus_rpc::client::{ClientBuilder, PropagateLayer};
//! use plexus_rpc::echo::v1::echo_client::EchoClient;
//! use tower::ServiceBuilder;
//! use tower::buffer::Buffer;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut builder = Balance::builder().check_interval(Duration::from_secs(2));
//! for url in ["http://127.0.0.1:50051", "http://127.0.0.1:50052"] {
//!     let channel = ClientBuilder::new(url).connect_lazy()?;
//!     let check = HealthCheck::grpc(channel.clone(), "plexus.echo.v1.Echo");
//!     builder = builder.endpoint(url.to_owned(), channel, check);
//! }
//! let balance = builder.build()?;
//! let health = balance.health(); // per-endpoint health, for metrics
//! let shared = Buffer::new(balance, 1024);
//! let stack = ServiceBuilder::new().layer(PropagateLayer::new()).service(shared);
//! let mut echo = EchoClient::new(stack);
//! # let _ = (&mut echo, health);
//! # Ok(()) }
//! ```

mod builder;
mod checker;
mod discover;
mod error;
mod fleet;
mod future;
mod health;
mod state;

use std::fmt::{self, Debug};
use std::hash::Hash;
use std::task::{Context, Poll};

use http::{Request, Response};
use tonic::Status;
use tower_service::Service;

pub use builder::{BalanceBuilder, MAX_ENDPOINTS};
pub use discover::{Endpoint, HealthDiscover};
pub use error::{BalanceError, NoHealthyEndpoint};
pub use fleet::{Timed, TimedFuture};
pub use future::ResponseFuture;
pub use health::HealthCheck;
pub use state::{EndpointHealth, Health};

use crate::retry::is_grpc;
use checker::Checker;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

type P2c<K, S, B> = tower::balance::p2c::Balance<HealthDiscover<K, S>, Request<B>>;

/// Balances calls over the healthy endpoints with power-of-two-choices
/// on PeakEwma latency. See the [module documentation](self).
pub struct Balance<K, S, B>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    S: Clone,
{
    inner: P2c<K, S, B>,
    health: Health<K>,
    /// Set when `poll_ready` found no healthy endpoint: the next call is
    /// rejected.
    reject: bool,
    _checker: Checker,
}

impl<K, S, B> Debug for Balance<K, S, B>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    S: Clone,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Balance")
            .field("endpoints", &self.health.len())
            .field("healthy", &self.health.healthy_count())
            .finish()
    }
}

impl Balance<(), (), ()> {
    /// A builder of a balancer.
    pub fn builder<K, S>() -> BalanceBuilder<K, S> {
        BalanceBuilder::new()
    }
}

impl<K, S, B> Balance<K, S, B>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    S: Clone,
{
    fn from_parts(discover: HealthDiscover<K, S>, health: Health<K>, checker: Checker) -> Self
    where
        S: Service<Request<B>>,
        S::Error: Into<BoxError>,
    {
        Balance {
            inner: tower::balance::p2c::Balance::new(discover),
            health,
            reject: false,
            _checker: checker,
        }
    }

    /// The endpoints' health.
    pub fn health(&self) -> Health<K> {
        self.health.clone()
    }

    fn no_healthy_endpoint(&self, grpc: bool) -> BoxError {
        let last_error = self
            .health
            .endpoints()
            .into_iter()
            .find_map(|e| e.last_error)
            .unwrap_or_else(|| "none recorded".to_owned());
        let error = NoHealthyEndpoint {
            endpoints: self.health.len(),
            last_error,
        };
        if grpc {
            Status::unavailable(error.to_string()).into()
        } else {
            error.into()
        }
    }
}

impl<K, S, B, R> Service<Request<B>> for Balance<K, S, B>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    S: Service<Request<B>, Response = Response<R>> + Clone,
    S::Error: Into<BoxError>,
{
    type Response = Response<R>;
    type Error = BoxError;
    type Future = ResponseFuture<<P2c<K, S, B> as Service<Request<B>>>::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        match self.inner.poll_ready(cx) {
            Poll::Ready(result) => {
                self.reject = false;
                Poll::Ready(result)
            }
            Poll::Pending if self.health.healthy_count() == 0 => {
                self.reject = true;
                Poll::Ready(Ok(()))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if std::mem::take(&mut self.reject) {
            return ResponseFuture::rejected(self.no_healthy_endpoint(is_grpc(request.headers())));
        }
        ResponseFuture::sent(self.inner.call(request))
    }
}
