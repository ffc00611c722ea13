//! [`InventoryMetrics`]: what the inventory's handlers did.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Delays kept at most (the rest are counted only).
const MAX_DELAYS: usize = 100_000;

/// Counters of the inventory's handlers.
#[derive(Debug, Default)]
pub struct InventoryMetrics {
    applied: AtomicU64,
    duplicates: AtomicU64,
    acks_lost: AtomicU64,
    delays: Mutex<Vec<Duration>>,
}

impl InventoryMetrics {
    pub(super) fn applied(&self, delay: Duration) {
        self.applied.fetch_add(1, Ordering::AcqRel);
        let mut delays = self.delays.lock().unwrap_or_else(PoisonError::into_inner);
        if delays.len() < MAX_DELAYS {
            delays.push(delay);
        }
    }

    pub(super) fn duplicate(&self) {
        self.duplicates.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether to lose this ack on purpose: yes (and counted) while fewer
    /// than `limit` were lost.
    pub(super) fn lose_ack(&self, limit: u64) -> bool {
        self.acks_lost
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |lost| {
                (lost < limit).then_some(lost + 1)
            })
            .is_ok()
    }

    /// Events whose effect was applied (first deliveries).
    pub fn applied_count(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }

    /// Deliveries the inbox dropped: seen before.
    pub fn duplicates_dropped(&self) -> u64 {
        self.duplicates.load(Ordering::Acquire)
    }

    /// Acknowledgements lost on purpose ([`lost_acks`](super::InventoryConfig::lost_acks)).
    pub fn acks_lost(&self) -> u64 {
        self.acks_lost.load(Ordering::Acquire)
    }

    /// For each effect applied, the time from the event's time to its
    /// commit.
    pub fn delays(&self) -> Vec<Duration> {
        self.delays
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
