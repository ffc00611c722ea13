//! plexus gRPC: tonic services behind a server and client stack that make
//! calls safe between services.
//!
//! - **Deadlines** ([`context`]): an incoming `grpc-timeout` becomes the
//!   handler's [`Deadline`](plexus_core::Deadline); calls the handler makes
//!   carry exactly the remaining budget ([`client`]); expired work is never
//!   started.
//! - **Cancellation** ([`context`]): when the client cancels, resets or
//!   disconnects, the handler's future is dropped and its
//!   [`CallContext`](context::CallContext) fires.
//! - **Trace context**: W3C `traceparent` in, `tracing` span, `traceparent` out.
//! - **TLS and mTLS** ([`tls`]) with rustls; client identities and a
//!   per-method, default-deny authorization policy, or bearer tokens ([`auth`]).
//! - **Explicit limits** ([`server::Limits`]): connections, streams, header
//!   size, message size, keepalive, reset floods.
//! - Health (`grpc.health.v1`) and server reflection (v1 and v1alpha).
//! - **Client resilience**, as tower layers for gRPC and HTTP clients alike:
//!   [`retry`] (idempotent calls only, jittered backoff, a retry budget,
//!   never past the deadline), [`breaker`] (a circuit breaker) and
//!   [`balance`] (power-of-two-choices on latency over the endpoints that
//!   pass their health checks).
//!
//! See [`Server`] and [`client::ClientBuilder`].
//!
//! Stacking the client layers over two endpoints:
//!
//! ```no_run
//! use plexus_rpc::balance::{Balance, HealthCheck};
//! use plexus_rpc::breaker::{BreakerConfig, CircuitBreakerLayer};
//! use plexus_rpc::client::{ClientBuilder, PropagateLayer};
//! use plexus_rpc::echo::v1::echo_client::EchoClient;
//! use plexus_rpc::retry::{Idempotency, RetryLayer, RetryPolicy};
//! use tower::ServiceBuilder;
//! use tower::buffer::Buffer;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut endpoints = Balance::builder();
//! for url in ["http://127.0.0.1:50051", "http://127.0.0.1:50052"] {
//!     let channel = ClientBuilder::new(url).connect_lazy()?;
//!     let check = HealthCheck::grpc(channel.clone(), "plexus.echo.v1.Echo");
//!     endpoints = endpoints.endpoint(url, channel, check);
//! }
//! let retries = RetryPolicy::new()
//!     .idempotency(Idempotency::new().grpc_method("/plexus.echo.v1.Echo/Unary"));
//! let channel = ServiceBuilder::new()
//!     .layer(RetryLayer::new(retries)) // each attempt may go to another endpoint
//!     .layer(CircuitBreakerLayer::new(BreakerConfig::new().name("echo")))
//!     .layer(PropagateLayer::new()) // deadline and trace, above the buffer's task
//!     .service(Buffer::new(endpoints.build()?, 1024));
//! let mut echo = EchoClient::new(channel);
//! # let _ = &mut echo;
//! # Ok(()) }
//! ```

pub mod auth;
pub mod balance;
pub mod breaker;
pub mod client;
pub mod context;
pub mod echo;
mod error;
mod headers;
pub mod limit;
pub mod retry;
pub mod server;
pub mod status;
pub mod tls;

pub use context::CallContext;
pub use error::Error;
pub use server::Server;
