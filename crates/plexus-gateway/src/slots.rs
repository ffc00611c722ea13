//! [`Slots`]: a bounded count of things in progress (requests, streams),
//! taken without waiting.
//!
//! The gateway never queues for a slot: a request that finds none is
//! answered 503 at once. A semaphore would do, but tokio's takes a lock on
//! every release; this is one atomic add each way.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// At most `limit` slots held at once.
#[derive(Debug)]
pub(crate) struct Slots {
    held: AtomicUsize,
    limit: usize,
}

/// One held slot, given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot(Arc<Slots>);

impl Slots {
    pub(crate) fn new(limit: usize) -> Arc<Self> {
        Arc::new(Slots {
            held: AtomicUsize::new(0),
            limit,
        })
    }

    /// A slot, or `None` when all `limit` are held.
    pub(crate) fn try_take(self: &Arc<Self>) -> Option<Slot> {
        let before = self.held.fetch_add(1, Ordering::AcqRel);
        if before >= self.limit {
            self.held.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Slot(Arc::clone(self)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.held.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::Slots;

    #[test]
    fn at_most_limit_slots_are_held_and_dropping_one_frees_it() {
        let slots = Slots::new(2);
        let a = slots.try_take().expect("first");
        let _b = slots.try_take().expect("second");
        assert!(slots.try_take().is_none(), "a third slot over the limit");
        assert!(slots.try_take().is_none(), "a refused take must not leak");
        drop(a);
        assert!(slots.try_take().is_some(), "a dropped slot is free again");
    }

    #[test]
    fn a_zero_limit_never_gives_a_slot() {
        assert!(Slots::new(0).try_take().is_none());
    }
}
