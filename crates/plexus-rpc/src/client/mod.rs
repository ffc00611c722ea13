//! The plexus gRPC client: a tonic channel that carries the current call's
//! remaining deadline, its trace context and the caller's credentials onto
//! every outgoing call.
//!
//! ```no_run
//! use plexus_rpc::client::ClientBuilder;
//! use plexus_rpc::echo::v1::{EchoRequest, echo_client::EchoClient};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let channel = ClientBuilder::new("http://127.0.0.1:50051").connect().await?;
//! let mut echo = EchoClient::new(channel);
//! let reply = echo.unary(EchoRequest { payload: "hi".into() }).await?;
//! # Ok(()) }
//! ```

mod builder;
mod cancel;
mod propagate;

pub use builder::ClientBuilder;
pub use propagate::{Propagate, PropagateLayer, ResponseFuture};

/// A connected plexus client channel; pass it to any generated tonic client.
pub type Channel = Propagate<tonic::transport::Channel>;
