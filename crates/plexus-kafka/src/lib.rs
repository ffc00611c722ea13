//! plexus messaging on Apache Kafka, with rdkafka (librdkafka built from
//! source, bundled into the binary).
//!
//! [`KafkaBus`] implements plexus's `Publisher` and `Subscriber` on Kafka
//! brokers: an idempotent producer whose publish returns once the brokers
//! acknowledged every record (`acks=all`), a key's messages in its
//! partition; consumer groups whose offsets are committed only behind
//! acknowledged messages (never ahead of processing), one message per key
//! at a time and different keys in parallel; nacks, nack delays and ack
//! deadlines kept by the consumer. Messages travel in the CloudEvents
//! Kafka binding's binary content mode (`ce_*` headers, `content-type`,
//! the key as the record key), so other Kafka clients read and write them
//! with plain headers.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use plexus_core::Message;
//! use plexus_core::bus::Publisher;
//! use plexus_kafka::KafkaBus;
//!
//! let bus = KafkaBus::connect(plexus_kafka::DEFAULT_URL).await?;
//! let message = Message::builder("shop.order.placed", "/shop").key("order-7").build()?;
//! bus.publish("shop.orders", vec![message]).await?;
//! # Ok(()) }
//! ```

mod binding;
mod bus;
mod config;
mod consumer;
mod topic;
mod topics;

pub use bus::KafkaBus;
pub use config::{DEFAULT_URL, KafkaConfig};
