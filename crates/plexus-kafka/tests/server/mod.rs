//! A tansu broker that a test starts on a free loopback port with a
//! SQLite store of its own, and restarts from the same store: killed
//! (SIGKILL, a crash) or stopped (SIGTERM), then the same command again.
//! Needs a tansu built with its `libsql` feature (the SQLite engine); the
//! in-memory engine forgets everything on a restart.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::Mutex;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::{Instant, sleep};

/// How long a started broker may take to accept connections.
const STARTUP: Duration = Duration::from_secs(20);

pub struct PrivateTansu {
    binary: PathBuf,
    port: u16,
    store: tempfile::TempDir,
    child: Mutex<Option<Child>>,
}

impl PrivateTansu {
    /// Starts a broker; the error says why not (no tansu binary:
    /// `PLEXUS_TANSU`, `~/.cache/plexus/tansu-0.6.0-sqlite-leader-fix/bin/tansu` or one on
    /// the PATH; or a tansu without the SQLite engine).
    pub async fn start() -> Result<Self, String> {
        let binary = binary().ok_or(
            "no tansu binary (set PLEXUS_TANSU, or run `bash -c 'source .ci/tansu.sh && tansu_install'`)",
        )?;
        let port = plexus_conformance::port::free_port()?
            .local_addr()
            .map_err(|e| format!("finding a free port: {e}"))?
            .port();
        let store = tempfile::Builder::new()
            .prefix("plexus-tansu")
            .tempdir()
            .map_err(|e| format!("a store directory: {e}"))?;
        let server = PrivateTansu {
            binary,
            port,
            store,
            child: Mutex::new(None),
        };
        server.spawn().await?;
        Ok(server)
    }

    /// The broker's address, `127.0.0.1:PORT`.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the broker (SIGKILL) and starts it again on the same port
    /// and store.
    pub async fn crash_and_restart(&self) -> Result<(), String> {
        self.kill();
        self.spawn().await
    }

    /// Stops the broker (SIGTERM, waiting for it to exit) and starts it
    /// again on the same port and store.
    pub async fn stop_and_restart(&self) -> Result<(), String> {
        let child = self.child.lock().expect("not poisoned").take();
        if let Some(mut child) = child {
            let stopped = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .map_err(|e| format!("sending SIGTERM to tansu: {e}"))?;
            if !stopped.success() {
                return Err(format!("kill -TERM {} failed: {stopped}", child.id()));
            }
            let waited = tokio::task::spawn_blocking(move || child.wait())
                .await
                .map_err(|e| format!("waiting for tansu to stop: {e}"))?;
            waited.map_err(|e| format!("waiting for tansu to stop: {e}"))?;
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
        let listener = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.store.path().join("tansu.log"))
            .map_err(|e| format!("opening tansu's log: {e}"))?;
        let mut child = Command::new(&self.binary)
            .args(["broker", "--listener-url", &listener])
            .args(["--advertised-listener-url", &listener])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(self.store.path())
            .stdout(
                log.try_clone()
                    .map_err(|e| format!("opening tansu's log: {e}"))?,
            )
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", self.binary.display()))?;
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).await.is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(self.store.path().join("tansu.log"))
                    .unwrap_or_default();
                let tail: String = log.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
                return Err(format!(
                    "{} exited with {status} (built without the SQLite engine? build it with \
                     --features libsql): {tail}",
                    self.binary.display()
                ));
            }
            if started.elapsed() > STARTUP {
                let _ = child.kill();
                return Err(format!(
                    "{} did not accept connections on port {} within {STARTUP:?}",
                    self.binary.display(),
                    self.port
                ));
            }
            sleep(Duration::from_millis(20)).await;
        }
        *self.child.lock().expect("not poisoned") = Some(child);
        self.index_store().await
    }

    /// Adds the index tansu 0.6.0's SQLite schema lacks on its `header`
    /// table: without it, fetching a record scans the headers of every
    /// record stored, and the broker slows to seconds a request (the
    /// same as `.ci/tansu.sh`'s `tansu_index_store`).
    async fn index_store(&self) -> Result<(), String> {
        use sqlx::ConnectOptions as _;
        let store = self.store.path().join("tansu.db");
        let mut db = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&store)
            .busy_timeout(Duration::from_secs(30))
            .connect()
            .await
            .map_err(|e| format!("opening tansu's store {}: {e}", store.display()))?;
        sqlx::query(
            "create index if not exists plexus_header_record on header (topition, offset_id)",
        )
        .execute(&mut db)
        .await
        .map_err(|e| format!("indexing tansu's store {}: {e}", store.display()))?;
        Ok(())
    }
}

impl Drop for PrivateTansu {
    fn drop(&mut self) {
        self.kill();
    }
}

fn binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PLEXUS_TANSU") {
        return Some(PathBuf::from(path));
    }
    if let Some(home) = std::env::var_os("HOME") {
        let cached =
            PathBuf::from(home).join(".cache/plexus/tansu-0.6.0-sqlite-leader-fix/bin/tansu");
        if cached.exists() {
            return Some(cached);
        }
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("tansu"))
            .find(|path| path.exists())
    })
}
