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
//!
//! See [`Server`] and [`client::ClientBuilder`].

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
