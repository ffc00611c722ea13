//! `shop.support.v1.Support`: a chat between a customer and an agent
//! (bidirectional streaming).
//!
//! The agent answers every customer message, in order, as soon as it
//! arrives. When a message mentions an order id (`ord-42`), the answer is
//! about that order: with [`SupportConfig::orders_url`] set, the agent looks
//! the order up on the orders service — inside the chat's
//! [`CallContext`](plexus_rpc::CallContext), so the lookup carries the
//! chat's remaining deadline and its trace. The conversation runs on a task
//! that stops as soon as the chat is over.

mod agent;
mod config;
mod metrics;
mod service;
mod start;

pub use config::SupportConfig;
pub use metrics::SupportMetrics;
pub use service::SupportService;
pub use start::{start, start_on};

/// Generated types and service traits of `shop.support.v1`.
#[allow(missing_docs)]
pub mod v1 {
    tonic::include_proto!("shop.support.v1");
}

/// The encoded `FileDescriptorSet` of `shop.support.v1`, for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/shop.support.v1_descriptor.bin"));
