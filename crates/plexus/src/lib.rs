//! plexus: communication and integration between services.
//!
//! This crate re-exports the plexus crates behind features, so one
//! dependency brings what an application uses:
//!
//! | feature | default | brings |
//! |---|---|---|
//! | `rpc` | yes | `rpc`: gRPC servers and clients with deadlines, cancellation, trace context, TLS/mTLS, authorization, explicit limits, and client resilience (retry, circuit breaker, load balancing) |
//! | `gateway` | no | `gateway`: a REST/JSON gateway serving `google.api.http`-annotated gRPC methods, with SSE streams and OpenAPI 3 |
//! | `bus` | no | `bus`: the in-memory bus and the Router (message handlers as tower services, with retry, dead letters, deadline check and per-key lanes) |
//! | `sqlite` | no | `sqlite`: the durable embedded bus on SQLite |
//!
//! The message model ([`Message`], [`Deadline`], [`TraceContext`], [`codec`])
//! and the bus contract ([`pubsub`]: `Publisher`, `Subscriber`, `Delivery`)
//! are always available.
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

/// The bus contract: `Publisher`, `Subscriber`, `Delivery`, `Features`.
pub use plexus_core::bus as pubsub;

/// gRPC servers and clients (feature `rpc`).
#[cfg(feature = "rpc")]
pub use plexus_rpc as rpc;

/// The REST/JSON gateway (feature `gateway`).
#[cfg(feature = "gateway")]
pub use plexus_gateway as gateway;

/// The in-memory bus and the Router (feature `bus`).
#[cfg(feature = "bus")]
pub use plexus_bus as bus;

/// The durable SQLite bus (feature `sqlite`).
#[cfg(feature = "sqlite")]
pub use plexus_sqlite as sqlite;
