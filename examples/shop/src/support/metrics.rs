//! [`SupportMetrics`]: what the support service counts.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of the support service, readable while it runs.
#[derive(Debug, Default)]
pub struct SupportMetrics {
    pub(crate) chats_started: AtomicU64,
    pub(crate) messages_answered: AtomicU64,
    pub(crate) lookups_failed: AtomicU64,
}

impl SupportMetrics {
    /// Chats opened.
    pub fn chats_started(&self) -> u64 {
        self.chats_started.load(Ordering::Relaxed)
    }

    /// Customer messages answered.
    pub fn messages_answered(&self) -> u64 {
        self.messages_answered.load(Ordering::Relaxed)
    }

    /// Order lookups that failed for another reason than an unknown order
    /// (orders service unreachable, timeout, …).
    pub fn lookups_failed(&self) -> u64 {
        self.lookups_failed.load(Ordering::Relaxed)
    }

    pub(crate) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
