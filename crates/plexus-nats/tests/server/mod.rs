//! A nats-server with JetStream that a test starts on a free loopback
//! port with a store directory of its own, and restarts from the same
//! store: killed (SIGKILL, a crash) or stopped (SIGTERM, the server
//! writes its state first), then the same command again.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::{Instant, sleep};

/// How long a started server may take to accept connections.
const STARTUP: Duration = Duration::from_secs(15);

pub struct PrivateServer {
    binary: PathBuf,
    port: u16,
    store: tempfile::TempDir,
    child: Mutex<Option<Child>>,
}

impl PrivateServer {
    /// Starts a server; the error says why not (no nats-server binary:
    /// `PLEXUS_NATS_SERVER`, `/usr/sbin/nats-server` or one on the PATH).
    pub async fn start() -> Result<Self, String> {
        let binary = binary().ok_or(
            "no nats-server binary (set PLEXUS_NATS_SERVER, or install Debian's nats-server)",
        )?;
        let port = plexus_conformance::port::free_port()?
            .local_addr()
            .map_err(|e| format!("finding a free port: {e}"))?
            .port();
        let store = tempfile::Builder::new()
            .prefix("plexus-nats-server")
            .tempdir()
            .map_err(|e| format!("a store directory: {e}"))?;
        let server = PrivateServer {
            binary,
            port,
            store,
            child: Mutex::new(None),
        };
        server.spawn().await?;
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL) and starts it again on the same port
    /// and store.
    pub async fn crash_and_restart(&self) -> Result<(), String> {
        self.kill();
        self.spawn().await
    }

    /// Stops the server (SIGTERM, waiting for it to exit) and starts it
    /// again on the same port and store.
    pub async fn stop_and_restart(&self) -> Result<(), String> {
        let child = self.child.lock().expect("not poisoned").take();
        if let Some(mut child) = child {
            let stopped = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .map_err(|e| format!("sending SIGTERM to nats-server: {e}"))?;
            if !stopped.success() {
                return Err(format!("kill -TERM {} failed: {stopped}", child.id()));
            }
            let waited = tokio::task::spawn_blocking(move || child.wait())
                .await
                .map_err(|e| format!("waiting for nats-server to stop: {e}"))?;
            waited.map_err(|e| format!("waiting for nats-server to stop: {e}"))?;
        }
        self.spawn().await
    }

    fn kill(&self) {
        if let Some(mut child) = self.child.lock().expect("not poisoned").take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    async fn spawn(&self) -> Result<(), String> {
        let child = Command::new(&self.binary)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(self.store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", self.binary.display()))?;
        *self.child.lock().expect("not poisoned") = Some(child);
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).await.is_err() {
            if started.elapsed() > STARTUP {
                return Err(format!(
                    "{} did not accept connections on port {} within {STARTUP:?}",
                    self.binary.display(),
                    self.port
                ));
            }
            sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PLEXUS_NATS_SERVER") {
        return Some(PathBuf::from(path));
    }
    let installed = PathBuf::from("/usr/sbin/nats-server");
    if installed.exists() {
        return Some(installed);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("nats-server"))
            .find(|path| path.exists())
    })
}
