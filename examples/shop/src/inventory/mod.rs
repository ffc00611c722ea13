//! `inventory`: reserves stock for every order placed, exactly once.
//!
//! One consumer group, `inventory`, reads
//! [`ORDER_PLACED_TOPIC`](crate::orders::ORDER_PLACED_TOPIC) on a plexus
//! [`Router`](plexus_bus::router::Router). Each event's effect — a row in
//! `reservations` — is written in one SQLite transaction with the
//! event's record in the [`SqliteInbox`](plexus_sqlite::SqliteInbox): an
//! event delivered again (an acknowledgement lost, a relay publishing
//! again after a crash) finds its record and changes nothing. The
//! `reservations` table has no unique constraint on purpose, so that an
//! effect applied twice would show as two rows
//! ([`Inventory::reservations`] counts them).
//!
//! [`InventoryConfig::lost_acks`] makes the first events' handlers fail
//! after their transaction committed, as a process dying between the
//! commit and the ack would: the router delivers them again and the inbox
//! drops them. Old inbox records are pruned on a schedule, a bounded
//! batch at a time.

mod metrics;
mod start;

pub use metrics::InventoryMetrics;
pub use start::{Inventory, InventoryConfig, Reservations, start};

/// The consumer group.
pub const GROUP: &str = "inventory";
