//! [`Running`]: a shop service serving on a background task.

use std::net::SocketAddr;
use std::sync::Arc;

use plexus_rpc::server::ServerHandle;

/// A shop service serving on a background task, with the counters it keeps.
/// Dropping it stops the server at once; [`shutdown`](Self::shutdown) stops
/// it gracefully.
#[derive(Debug)]
pub struct Running<M> {
    server: ServerHandle,
    metrics: Arc<M>,
}

impl<M> Running<M> {
    pub(crate) fn new(server: ServerHandle, metrics: Arc<M>) -> Self {
        Running { server, metrics }
    }

    /// The address the service listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// `http://` plus the address, for clients.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The service's counters.
    pub fn metrics(&self) -> &Arc<M> {
        &self.metrics
    }

    /// Stops accepting, lets open calls finish, and waits for the server to stop.
    pub async fn shutdown(self) -> Result<(), plexus_rpc::Error> {
        self.server.shutdown().await
    }
}
