//! plexus messaging on RabbitMQ (AMQP 0.9.1).
//!
//! [`RabbitBus`] implements plexus's `Publisher` and `Subscriber` on a
//! RabbitMQ broker: topics are routing keys of one durable topic exchange,
//! a publish returns once the broker confirmed every message (publisher
//! confirms, persistent messages), consumer groups are durable quorum
//! queues their members consume together (prefetch = `max_in_flight`),
//! attempts are the quorum queue's delivery count, ack deadlines and nack
//! delays are kept by the subscription, and unreadable messages are
//! dead-lettered. Messages travel in the CloudEvents AMQP binding's
//! binary content mode (`cloudEvents:*` application properties, see
//! [`RabbitBus`]), so other AMQP clients read and write them with plain
//! headers.
//!
//! Per-key order and replay are not offered (see [`RabbitBus`]).
//!
//! ```no_run
//! # async fn run() -> Result<(), plexus_core::bus::BusError> {
//! use plexus_core::Message;
//! use plexus_core::bus::{Publisher, SubscribeOptions, Subscriber};
//! use plexus_rabbitmq::{DEFAULT_URL, RabbitBus};
//!
//! let bus = RabbitBus::connect(DEFAULT_URL).await?;
//! let mut emails = bus.subscribe("shop.orders", SubscribeOptions::group("email")).await?;
//! let placed = Message::builder("shop.order.placed", "/shop").build().expect("a message");
//! bus.publish("shop.orders", vec![placed]).await?;
//! # drop(emails); Ok(()) }
//! ```
//!
//! No feature flags; plain `amqp://` only (TLS is not built in).

mod acker;
mod binding;
mod bus;
mod config;
mod link;
mod member;
mod names;
mod subscription;

pub use bus::RabbitBus;
pub use config::{DEFAULT_URL, DeadLetters, RabbitConfig};
