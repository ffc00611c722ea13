//! The in-memory bus against the conformance suite (`plexus-conformance`):
//! every scenario that applies to a non-persistent backend.
//!
//! `PLEXUS_STRESS=N cargo test -p plexus-bus --test conformance` runs N
//! copies of each scenario at once.

use plexus_bus::memory::MemoryBus;
use plexus_conformance::Backend;

/// A fresh bus per scenario (and per copy in stress mode): one handle is
/// both publisher and subscriber, so closing either closes both.
async fn memory_bus() -> Backend {
    Backend::one_handle("memory bus", MemoryBus::new())
}

plexus_conformance::conformance_tests!(memory_bus);
