//! plexus messaging on SQLite: the embedded durable bus.
//!
//! [`SqliteBus`] implements the bus contract ([`plexus_core::bus`]) on one
//! SQLite database file in WAL mode with `synchronous=FULL`: a `publish`
//! or an `ack` returns only once it is committed and fsynced, so it
//! survives a crash of the process or of the machine.
//!
//! - **Group commit.** One writer task owns the connection. Publishes,
//!   acks, nacks and claims queue for it (a bounded queue, bounded in
//!   bytes too); it applies everything queued in one transaction and one
//!   fsync, then answers every waiter. Concurrent publishers share the
//!   cost of a commit. A commit costs a few statements however many
//!   commands it carries: the publishes of a topic go together as
//!   multi-row INSERTs, every ack of a group is one DELETE, the claims of
//!   a group are one lease. Lately published messages are handed to
//!   claims from memory ([`SqliteConfig::cache_bytes`]), not read back.
//! - **Consumer groups** keep their cursor and their unacknowledged
//!   messages in the database: leases with ack deadlines (an expired one
//!   is delivered again with `attempt + 1`), nacks with a delay, and
//!   per-key order (the next message of a key waits while an earlier one
//!   is unacknowledged in the group, across nacks and redeliveries).
//!   A subscription without a group has a private group, removed when the
//!   subscription is dropped.
//! - **Retention.** Messages every group has acknowledged are deleted in
//!   bounded batches; a topic without groups keeps its latest
//!   [`SqliteConfig::retain_without_groups`] messages, for groups that
//!   start at the earliest.
//! - **Waiting claims.** A subscription with nothing to take leaves its
//!   claim parked at the writer, which runs it inside the next commit that
//!   gives the topic something, so deliveries leave with the commit that
//!   wrote them; writes by another process on the same file are seen
//!   within [`SqliteConfig::poll_interval`].
//! - **Transactional outbox.** [`SqliteOutbox::publish`] writes messages
//!   to the bus's outbox table inside the caller's own sqlx transaction
//!   on the same file (one INSERT): they exist exactly when that
//!   transaction commits. The writer moves them into their topics in
//!   commit order, and a consumer group (a relay) takes them on from
//!   there.
//! - **Inbox.** [`SqliteInbox::process`] records, in the transaction of a
//!   handler's effect, that a consumer processed a message: a redelivered
//!   message is seen again and its effect not applied twice.
//!
//! ```no_run
//! use futures::StreamExt;
//! use plexus_core::Message;
//! use plexus_core::bus::{Publisher, SubscribeOptions, Subscriber};
//! use plexus_sqlite::SqliteBus;
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let bus = SqliteBus::connect("sqlite://data/bus.db").await?;
//! let mut orders = bus.subscribe("orders", SubscribeOptions::group("email")).await?;
//! let placed = Message::builder("shop.OrderPlaced", "/orders").key("order-1").build()?;
//! bus.publish("orders", vec![placed]).await?; // on disk when this returns
//! let delivery = orders.next().await.expect("a delivery")?;
//! delivery.ack().await?; // recorded on disk when this returns
//! Publisher::close(&bus).await?;
//! # Ok(()) }
//! ```

mod bus;
mod config;
mod exclusive;
mod inbox;
mod outbox;
mod row;
mod schema;
mod subscription;
mod turns;
mod writer;

pub use bus::SqliteBus;
pub use config::SqliteConfig;
pub use inbox::SqliteInbox;
pub use outbox::{OutboxTransaction, SqliteOutbox};
pub use plexus_core::bus::Seen;
