//! The NATS JetStream bus against the conformance suite
//! (`plexus-conformance`), on real servers:
//!
//! - `machine`: every scenario against the machine's server
//!   (`PLEXUS_TEST_NATS`, default `nats://127.0.0.1:4222`); each handle
//!   is a connection of its own. Skips with one line when the server is
//!   unreachable, fails then with `CI=true`.
//! - `interop`: `cloudevents_interop` with Python's nats-py (binary
//!   content mode both ways) against the machine's server.
//! - `restarted`: `reconnect` and `durable_across_restart` against a
//!   server this test starts on a free port with a store of its own, so
//!   that restarting it disturbs no other scenario. `reconnect` kills it
//!   (SIGKILL) mid-stream; `durable_across_restart` stops it (SIGTERM:
//!   JetStream writes acknowledgements to its store lazily, so a server
//!   that crashes may deliver acknowledged messages again, at least once)
//!   and also kills a child process (this binary running the ignored
//!   `crash_child`) mid-stream.

mod server;

use std::time::Duration;

use plexus_conformance::Backend;
use plexus_core::bus::{BusError, Publisher};
use plexus_nats::{NatsBus, NatsConfig};

/// The stream the suite uses (apart from the bus's default one).
fn config(url: &str) -> NatsConfig {
    let mut config = NatsConfig::new(url);
    config.stream = "PLEXUS_CONFORMANCE".to_owned();
    config.subject_prefix = "plexus_conformance".to_owned();
    config.max_age = Duration::from_secs(3600);
    config
}

/// A backend whose every handle is a new connection to `url`, or the
/// reason it is unavailable.
async fn backend(name: &str, url: &str) -> Result<Backend, String> {
    backend_with(name, url, config).await
}

async fn backend_with(
    name: &str,
    url: &str,
    config: fn(&str) -> NatsConfig,
) -> Result<Backend, String> {
    let bus = NatsBus::with_config(config(url))
        .await
        .map_err(|e| e.to_string())?;
    let features = Publisher::features(&bus);
    let _ = Publisher::close(&bus).await;
    let (for_publishers, for_subscribers) = (url.to_owned(), url.to_owned());
    Ok(Backend::new(
        name,
        features,
        move || NatsBus::with_config(config(&for_publishers)),
        move || NatsBus::with_config(config(&for_subscribers)),
    ))
}

mod machine {
    use super::*;

    async fn nats_bus() -> Backend {
        let url = std::env::var("PLEXUS_TEST_NATS")
            .unwrap_or_else(|_| plexus_nats::DEFAULT_URL.to_owned());
        let name = format!("nats bus ({url})");
        backend(&name, &url).await.unwrap_or_else(|reason| {
            Backend::unavailable(
                name,
                format!(
                    "{reason}; start it with `start-stop-daemon --start --oknodo --background \
                     --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server` \
                     or point PLEXUS_TEST_NATS at one"
                ),
            )
        })
    }

    plexus_conformance::conformance_tests!(nats_bus);
}

mod interop {
    use std::path::Path;

    use plexus_conformance::PythonClient;

    use super::*;

    /// cloudevents_interop with Python's nats-py on the machine's server;
    /// skips with one line without nats-py or the server (fails then with
    /// `CI=true`).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cloudevents_interop() {
        let url = std::env::var("PLEXUS_TEST_NATS")
            .unwrap_or_else(|_| plexus_nats::DEFAULT_URL.to_owned());
        let name = format!("nats bus ({url}) with Python");
        let setup = || async {
            let stream = config(&url);
            let found = PythonClient::find(
                "Python nats-py",
                "nats",
                Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/nats_interop.py"),
                "crates/plexus-nats/tests/python/requirements.txt",
                {
                    let url = url.clone();
                    move |topic: &str| {
                        let subject = format!("{}.{topic}", stream.subject_prefix);
                        vec![url.clone(), stream.stream.clone(), subject]
                    }
                },
            )
            .await;
            let foreign = match found {
                Ok(foreign) => foreign,
                Err(reason) => return Backend::unavailable(name.clone(), reason),
            };
            match backend(&name, &url).await {
                Ok(backend) => backend.foreign_client(foreign),
                Err(reason) => Backend::unavailable(name.clone(), reason),
            }
        };
        let _outcome = plexus_conformance::run("cloudevents_interop", setup, |backend| {
            Box::pin(plexus_conformance::scenarios::cloudevents_interop(backend))
        })
        .await;
    }
}

mod restarted {
    use std::sync::Arc;

    use super::*;
    use crate::server::PrivateServer;

    /// The variable giving the crash child its server.
    const CRASH_URL_VAR: &str = "PLEXUS_NATS_CRASH_URL";

    /// A backend on a server of its own, restartable.
    async fn nats_bus_on_own_server() -> Backend {
        let name = "nats bus (own server)";
        let server = match PrivateServer::start().await {
            Ok(server) => Arc::new(server),
            Err(reason) => return Backend::unavailable(name, reason),
        };
        let url = server.url();
        // Publishes the reconnect scenario retries are stored once.
        let deduplicating = |url: &str| NatsConfig {
            deduplicate: true,
            ..config(url)
        };
        let backend = match backend_with(name, &url, deduplicating).await {
            Ok(backend) => backend,
            Err(reason) => return Backend::unavailable(name, reason),
        };
        let (for_restart, for_reopen) = (Arc::clone(&server), server);
        backend
            .restart_broker(move || {
                let server = Arc::clone(&for_restart);
                async move { own_server(server.crash_and_restart().await) }
            })
            .reopen(move || {
                let server = Arc::clone(&for_reopen);
                async move { own_server(server.stop_and_restart().await) }
            })
            .crash_child(move || {
                let exe = std::env::current_exe().expect("the test binary's path");
                let mut command = std::process::Command::new(exe);
                command
                    .args([
                        "restarted::crash_child",
                        "--exact",
                        "--ignored",
                        "--nocapture",
                        "--test-threads=1",
                    ])
                    .env(CRASH_URL_VAR, &url);
                command
            })
    }

    fn own_server(restarted: Result<(), String>) -> Result<(), BusError> {
        restarted.map_err(|reason| BusError::backend("nats bus (own server)", reason))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reconnect() {
        let _outcome = plexus_conformance::run("reconnect", nats_bus_on_own_server, |backend| {
            Box::pin(plexus_conformance::scenarios::reconnect(backend))
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn durable_across_restart() {
        let _outcome = plexus_conformance::run(
            "durable_across_restart",
            nats_bus_on_own_server,
            |backend| {
                Box::pin(plexus_conformance::scenarios::durable_across_restart(
                    backend,
                ))
            },
        )
        .await;
    }

    /// The child half of `durable_across_restart` (run by it, killed by it).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "the child process of durable_across_restart, run by it"]
    async fn crash_child() {
        let url = std::env::var(CRASH_URL_VAR).expect("run by durable_across_restart with the URL");
        let backend = super::backend("nats bus (crash child)", &url)
            .await
            .expect("the parent's server");
        plexus_conformance::crash_child(&backend).await;
    }
}
