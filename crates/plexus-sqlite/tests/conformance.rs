//! The SQLite bus against the conformance suite (`plexus-conformance`),
//! twice:
//!
//! - `shared`: one bus per database, cloned for every handle (as one
//!   process uses it): wake-ups are in-process; closing any handle closes
//!   all.
//! - `separate`: every publisher and subscriber is a bus of its own on the
//!   same file (as separate processes would be): each has its own
//!   connection and writer, they contend for SQLite's write lock, and
//!   subscribers see other handles' writes by polling.
//!
//! `durable_across_restart` closes the handles and reopens the file, then
//! kills a child process (this binary running the ignored `crash_child`
//! on the same file) with SIGKILL while it publishes and acknowledges.
//! `PLEXUS_STRESS=N cargo test -p plexus-sqlite --test conformance` runs N
//! copies of each scenario at once.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use plexus_conformance::Backend;
use plexus_core::Message;
use plexus_core::bus::{
    BoxFuture, BusError, Features, Publisher, SubscribeOptions, Subscriber, Subscription,
};
use plexus_sqlite::{SqliteBus, SqliteConfig};

/// A database file in a temporary directory of its own (each scenario,
/// and each stress copy, gets one), removed when the last holder of the
/// returned guard (the backend's hooks) is dropped.
fn fresh_database() -> (PathBuf, Arc<tempfile::TempDir>) {
    let dir = tempfile::Builder::new()
        .prefix("plexus-sqlite-conformance")
        .tempdir()
        .expect("a temporary directory");
    (dir.path().join("bus.db"), Arc::new(dir))
}

/// The longest single wait of a scenario. An acknowledgement returns once
/// committed and fsynced, and scenarios that acknowledge 10,000 messages
/// one after the other wait for as many fsyncs (2-3 ms each on the test
/// machines: `publisher_close` took 27 s of the default 30 s alone, and
/// passed that bound only sometimes beside another scenario).
const PATIENCE: Duration = Duration::from_secs(90);

/// The database file a crash child opens.
const CRASH_DB_VAR: &str = "PLEXUS_SQLITE_CRASH_DB";

/// The command running [`crash_child`] on `path`.
fn crash_child_command(path: &Path) -> std::process::Command {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut command = std::process::Command::new(exe);
    command
        .args([
            "crash_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_DB_VAR, path);
    command
}

/// The child half of `durable_across_restart` (run by it, killed by it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of durable_across_restart, run by it"]
async fn crash_child() {
    let path = PathBuf::from(
        std::env::var_os(CRASH_DB_VAR)
            .expect("run by durable_across_restart with the database path"),
    );
    let (for_publishers, for_subscribers) = (path.clone(), path.clone());
    let backend = Backend::new(
        "sqlite bus (crash child)",
        Features::default(),
        move || SqliteBus::with_config(config(&for_publishers)),
        move || SqliteBus::with_config(config(&for_subscribers)),
    );
    plexus_conformance::crash_child(&backend).await;
}

fn config(path: &Path) -> SqliteConfig {
    let mut config = SqliteConfig::new(path);
    // Handles of one file in separate buses see each other's writes by
    // polling; keep that short so the suite's waits stay brisk.
    config.poll_interval = Duration::from_millis(25);
    config
}

mod shared {
    use super::*;

    /// The bus every handle of a scenario shares; the reopen hook swaps in
    /// a bus newly opened on the same file.
    #[derive(Clone)]
    struct Reopenable {
        current: Arc<Mutex<SqliteBus>>,
    }

    impl Reopenable {
        fn bus(&self) -> SqliteBus {
            self.current.lock().unwrap().clone()
        }
    }

    impl Publisher for Reopenable {
        fn publish<'a>(
            &'a self,
            topic: &'a str,
            batch: Vec<Message>,
        ) -> BoxFuture<'a, Result<(), BusError>> {
            let bus = self.bus();
            Box::pin(async move { bus.publish(topic, batch).await })
        }

        fn close(&self) -> BoxFuture<'_, Result<(), BusError>> {
            let bus = self.bus();
            Box::pin(async move { Publisher::close(&bus).await })
        }

        fn features(&self) -> Features {
            Publisher::features(&self.bus())
        }
    }

    impl Subscriber for Reopenable {
        fn subscribe<'a>(
            &'a self,
            topic: &'a str,
            options: SubscribeOptions,
        ) -> BoxFuture<'a, Result<Subscription, BusError>> {
            let bus = self.bus();
            Box::pin(async move { bus.subscribe(topic, options).await })
        }

        fn close(&self) -> BoxFuture<'_, Result<(), BusError>> {
            let bus = self.bus();
            Box::pin(async move { Subscriber::close(&bus).await })
        }

        fn features(&self) -> Features {
            Subscriber::features(&self.bus())
        }
    }

    async fn sqlite_bus() -> Backend {
        let (path, dir) = fresh_database();
        let bus = match SqliteBus::with_config(config(&path)).await {
            Ok(bus) => bus,
            Err(error) => return Backend::unavailable("sqlite bus (shared)", error.to_string()),
        };
        let handle = Reopenable {
            current: Arc::new(Mutex::new(bus)),
        };
        let for_reopen = handle.clone();
        let child_path = path.clone();
        Backend::one_handle("sqlite bus (shared)", handle)
            .patience(PATIENCE)
            .crash_child(move || crash_child_command(&child_path))
            .reopen(move || {
                let _dir = &dir;
                let handle = for_reopen.clone();
                let path = path.clone();
                async move {
                    Publisher::close(&handle.bus()).await?;
                    let reopened = SqliteBus::with_config(config(&path)).await?;
                    *handle.current.lock().unwrap() = reopened;
                    Ok(())
                }
            })
    }

    plexus_conformance::conformance_tests!(sqlite_bus);
}

mod separate {
    use super::*;

    /// Every handle a bus of its own on the scenario's file; reopening
    /// checks the file opens again from what is stored (the handles are
    /// closed by then, and later ones open it anew).
    async fn sqlite_buses() -> Backend {
        let (path, dir) = fresh_database();
        let features = match SqliteBus::with_config(config(&path)).await {
            Ok(bus) => {
                let features = Publisher::features(&bus);
                let _ = Publisher::close(&bus).await;
                features
            }
            Err(error) => {
                return Backend::unavailable("sqlite bus (separate)", error.to_string());
            }
        };
        let (for_publishers, for_subscribers) = (path.clone(), path.clone());
        let (for_reopen, child_path) = (path.clone(), path);
        Backend::new(
            "sqlite bus (separate)",
            features,
            move || SqliteBus::with_config(config(&for_publishers)),
            move || SqliteBus::with_config(config(&for_subscribers)),
        )
        .patience(PATIENCE)
        .crash_child(move || crash_child_command(&child_path))
        .reopen(move || {
            let _dir = &dir;
            let path = for_reopen.clone();
            async move {
                let bus = SqliteBus::with_config(config(&path)).await?;
                Publisher::close(&bus).await
            }
        })
    }

    plexus_conformance::conformance_tests!(sqlite_buses);
}
