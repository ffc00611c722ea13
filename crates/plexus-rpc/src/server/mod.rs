//! The plexus gRPC server: tonic services behind plexus's layers, on a
//! connection loop whose every bound is explicit.
//!
//! ```no_run
//! use plexus_rpc::echo::{EchoService, v1::echo_server::EchoServer};
//! use plexus_rpc::Server;
//!
//! # async fn run() -> Result<(), plexus_rpc::Error> {
//! let server = Server::builder()
//!     .add_service(EchoServer::new(EchoService::default()))
//!     .reflection(plexus_rpc::echo::FILE_DESCRIPTOR_SET)
//!     .bind("127.0.0.1:50051")
//!     .await?;
//! server.serve(async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```
//!
//! Every call passes, in order: [`ContextLayer`](crate::context::ContextLayer)
//! (deadline, trace, cancellation), [`AuthLayer`](crate::auth::AuthLayer) when a
//! policy is set, and [`MessageSizeLayer`](crate::limit::MessageSizeLayer). The
//! server always serves `grpc.health.v1.Health` and server reflection (v1 and
//! v1alpha) for the descriptor sets it is given.

mod builder;
mod connection_info;
mod handle;
mod limits;
mod serve;
mod timer;
mod unimplemented;
mod wake_gate;

pub use builder::{BoundServer, Server};
pub use connection_info::ConnectionInfo;
pub use handle::ServerHandle;
pub use limits::Limits;
