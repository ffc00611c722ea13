//! plexus: communication and integration between services.
//!
//! This crate re-exports the plexus crates behind features, so one
//! dependency brings what an application uses:
//!
//! | feature | default | brings |
//! |---|---|---|
//! | `rpc` | yes | `rpc`: gRPC servers and clients with deadlines, cancellation, trace context, TLS/mTLS, authorization, explicit limits, and client resilience (retry, circuit breaker, load balancing) |
//! | `gateway` | no | `gateway`: a REST/JSON gateway serving `google.api.http`-annotated gRPC methods, with SSE streams and OpenAPI 3 |
//!
//! The message model ([`Message`], [`Deadline`], [`TraceContext`], [`codec`])
//! is always available.
//!
//! ```no_run
//! # #[cfg(feature = "rpc")]
//! # async fn run() -> Result<(), plexus::rpc::Error> {
//! use plexus::rpc::Server;
//! use plexus::rpc::echo::{EchoService, FILE_DESCRIPTOR_SET, v1::echo_server::EchoServer};
//!
//! let server = Server::builder()
//!     .add_service(EchoServer::new(EchoService))
//!     .reflection(FILE_DESCRIPTOR_SET)
//!     .bind("127.0.0.1:50051")
//!     .await?;
//! server.serve(async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

pub use plexus_core::{
    Deadline, Error, ErrorKind, Message, MessageBuilder, MessageParts, TraceContext,
};
pub use plexus_core::{codec, deadline, message, trace};

/// gRPC servers and clients (feature `rpc`).
#[cfg(feature = "rpc")]
pub use plexus_rpc as rpc;

/// The REST/JSON gateway (feature `gateway`).
#[cfg(feature = "gateway")]
pub use plexus_gateway as gateway;
