//! [`WriteTurns`]: the order in which this process's writers of one
//! database take the write lock.
//!
//! SQLite lets one transaction write at a time. A connection that finds
//! the lock taken waits in SQLite's busy handler, which sleeps between
//! tries (1 ms, then 2, 5, 10 … up to 100 ms): two connections of one
//! process writing at once (the bus's writer and a service's outbox
//! transaction) keep each other waiting for those sleeps, not for the
//! transactions. Writers of this process therefore queue here first, in
//! order, and each begins its transaction when the one before it ended.
//! Writers in other processes still meet in the busy handler.

use std::sync::Arc;

use tokio::sync::{Mutex, OwnedMutexGuard};

/// The queue of this process's writers of one database (see the module);
/// cheap to clone, all clones one queue.
#[derive(Debug, Clone, Default)]
pub(crate) struct WriteTurns {
    lock: Arc<Mutex<()>>,
}

/// A writer's turn, until dropped.
#[derive(Debug)]
pub(crate) struct Turn {
    _held: OwnedMutexGuard<()>,
}

impl WriteTurns {
    /// Waits for the writers before this one; the turn lasts until the
    /// [`Turn`] is dropped.
    pub(crate) async fn take(&self) -> Turn {
        Turn {
            _held: Arc::clone(&self.lock).lock_owned().await,
        }
    }

    /// Whether a writer holds its turn now.
    pub(crate) fn busy(&self) -> bool {
        self.lock.try_lock().is_err()
    }
}
