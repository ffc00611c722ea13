//! [`ServerHandle`]: a server serving on a background task.

use std::net::SocketAddr;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic_health::server::HealthReporter;

use super::builder::BoundServer;
use crate::error::Error;

/// A server running on a background task. [`shutdown`](Self::shutdown)
/// stops it gracefully; dropping the handle stops it at once (open calls are
/// cancelled), so no server outlives its owner.
#[derive(Debug)]
pub struct ServerHandle {
    local_addr: SocketAddr,
    health: HealthReporter,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), Error>>>,
}

impl ServerHandle {
    pub(super) fn spawn(server: BoundServer) -> Self {
        let local_addr = server.local_addr();
        let health = server.health();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(async move {
            let _ = stopped.await;
        }));
        ServerHandle {
            local_addr,
            health,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://` plus the address, for clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// The health reporter, to mark services (not) serving.
    pub fn health(&self) -> &HealthReporter {
        &self.health
    }

    /// Stops accepting, lets open calls finish (within the shutdown grace
    /// limit), and waits for the server to stop.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task
                .await
                .map_err(|e| Error::Io(std::io::Error::other(e)))?,
            None => Ok(()),
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
