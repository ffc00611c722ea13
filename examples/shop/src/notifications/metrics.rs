//! [`NotificationsMetrics`]: what each group and member received.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// What one consumer group received.
#[derive(Debug, Default, Clone)]
pub struct GroupReceipts {
    /// Order id → how many times the group handled its event.
    pub orders: HashMap<String, u32>,
    /// Member route name → events it handled.
    pub per_member: HashMap<String, u64>,
    /// Time from each event's `time` to its handling.
    pub delays: Vec<Duration>,
}

/// What every group received. Bounded by the number of orders placed
/// (the demo's workload); a long-running service would export counters
/// instead.
#[derive(Debug, Default)]
pub struct NotificationsMetrics {
    groups: Mutex<HashMap<String, GroupReceipts>>,
}

impl NotificationsMetrics {
    pub(super) fn record(&self, group: &str, member: &str, order_id: &str, delay: Duration) {
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        let receipts = groups.entry(group.to_owned()).or_default();
        *receipts.orders.entry(order_id.to_owned()).or_default() += 1;
        *receipts.per_member.entry(member.to_owned()).or_default() += 1;
        receipts.delays.push(delay);
    }

    /// A copy of what `group` received so far.
    pub fn group(&self, group: &str) -> GroupReceipts {
        let groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        groups.get(group).cloned().unwrap_or_default()
    }

    /// How many distinct orders `group` has handled.
    pub fn distinct(&self, group: &str) -> usize {
        let groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        groups.get(group).map_or(0, |g| g.orders.len())
    }
}
