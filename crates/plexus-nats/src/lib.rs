//! plexus messaging on NATS JetStream.
//!
//! [`NatsBus`] implements plexus's `Publisher` and `Subscriber` on a NATS
//! server with JetStream: topics are subjects of one file-backed stream,
//! a publish returns once the stream stored every message, consumer groups
//! are durable pull consumers their members share, acks are confirmed by
//! the server before they return, nacks redeliver after their delay. Messages
//! travel in the CloudEvents NATS binding's binary content mode (see
//! [`binding`](crate) docs on `NatsBus`), so other NATS clients read and
//! write them with plain headers.
//!
//! Per-key order is not offered: the members of a group pull from one
//! consumer in parallel, and JetStream keeps no order per key across them.

mod binding;
mod bus;
mod config;
mod subject;
mod subscription;

pub use bus::NatsBus;
pub use config::{DEFAULT_URL, NatsConfig};
