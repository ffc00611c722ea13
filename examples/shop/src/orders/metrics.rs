//! [`OrdersMetrics`]: what the orders service counts.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of the orders service, readable while it runs.
#[derive(Debug, Default)]
pub struct OrdersMetrics {
    pub(crate) orders_placed: AtomicU64,
    pub(crate) orders_imported: AtomicU64,
    pub(crate) watchers_started: AtomicU64,
    pub(crate) watchers_completed: AtomicU64,
    pub(crate) watchers_cancelled: AtomicU64,
    pub(crate) watchers_deadline_exceeded: AtomicU64,
}

impl OrdersMetrics {
    /// Orders stored by `PlaceOrder`.
    pub fn orders_placed(&self) -> u64 {
        self.orders_placed.load(Ordering::Relaxed)
    }

    /// Orders stored by `ImportOrders`.
    pub fn orders_imported(&self) -> u64 {
        self.orders_imported.load(Ordering::Relaxed)
    }

    /// `WatchOrder` producers started.
    pub fn watchers_started(&self) -> u64 {
        self.watchers_started.load(Ordering::Relaxed)
    }

    /// `WatchOrder` producers that sent DELIVERED and ended.
    pub fn watchers_completed(&self) -> u64 {
        self.watchers_completed.load(Ordering::Relaxed)
    }

    /// `WatchOrder` producers stopped because the client cancelled the call
    /// or went away.
    pub fn watchers_cancelled(&self) -> u64 {
        self.watchers_cancelled.load(Ordering::Relaxed)
    }

    /// `WatchOrder` producers stopped because the call's deadline passed.
    pub fn watchers_deadline_exceeded(&self) -> u64 {
        self.watchers_deadline_exceeded.load(Ordering::Relaxed)
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}
