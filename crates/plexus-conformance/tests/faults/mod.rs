//! Test backends with deliberate faults.

mod foreign;
mod handle;

pub use handle::{Fault, backend};

use plexus_conformance::Backend;

/// `backend(fault, false)` with the hooks of a broker backend: a restart
/// that does nothing (the bus stays up), and a stand-in foreign client on
/// the same bus that drops subjects when the fault is `DropsSubject`.
pub async fn broker_backend(fault: Fault) -> Backend {
    let backend = backend(fault, false);
    let stand_in = foreign::StandIn {
        publisher: backend.make_publisher().await.expect("a publisher"),
        subscriber: backend.make_subscriber().await.expect("a subscriber"),
        drops_subject: fault == Fault::DropsSubject,
    };
    backend
        // The bus stays up: the restart only gives way once.
        .restart_broker(|| async {
            tokio::task::yield_now().await;
            Ok(())
        })
        .foreign_client(stand_in)
}
