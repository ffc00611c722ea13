//! `notifications`: publish/subscribe on [`OrderPlaced`](crate::orders::OrderPlaced).
//!
//! Three consumer groups read [`ORDER_PLACED_TOPIC`](crate::orders::ORDER_PLACED_TOPIC):
//! each group receives every event, and the members of a group share
//! them. `email` has three members (a message goes to one of them),
//! `sms` and `analytics` one each. Every handler is a plexus
//! [`Router`](plexus_bus::router::Router) route; [`NotificationsMetrics`]
//! records what each group and member received, and how long after the
//! event's time.

mod metrics;
mod start;

pub use metrics::{GroupReceipts, NotificationsMetrics};
pub use start::{Notifications, NotificationsConfig, start};

/// The consumer groups, and how many members each runs.
pub const GROUPS: [(&str, usize); 3] = [("email", 3), ("sms", 1), ("analytics", 1)];
