//! plexus messaging.
//!
//! - [`memory`]: the in-memory backend, the reference implementation of
//!   the bus contract ([`plexus_core::bus`]): consumer groups, per-key
//!   order, ack deadlines, delayed nacks, bounded topics. Not persistent.
//! - [`router`]: runs message handlers (tower services) on subscriptions,
//!   with middleware layers: retry with backoff, dead letters, deadline
//!   check, per-key lanes, and tower's timeout and concurrency limit.
//! - [`forward`]: the [`Forwarder`](forward::Forwarder), which moves a
//!   topic's messages to a topic of another bus, acknowledging each at
//!   its source only once the destination accepted it (what an outbox
//!   relay is).
//!
//! ```
//! use plexus_bus::memory::MemoryBus;
//! use plexus_core::bus::{Publisher, Subscriber, SubscribeOptions};
//! use plexus_core::Message;
//! use futures::StreamExt;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let bus = MemoryBus::new();
//! let mut orders = bus.subscribe("orders", SubscribeOptions::group("email")).await?;
//! let placed = Message::builder("shop.OrderPlaced", "/orders").key("order-1").build()?;
//! bus.publish("orders", vec![placed]).await?;
//! let delivery = orders.next().await.expect("a delivery")?;
//! assert_eq!(delivery.message().key(), Some("order-1"));
//! delivery.ack().await?;
//! # Ok(()) }
//! ```

pub mod forward;
pub mod lag;
pub mod memory;
pub mod router;
