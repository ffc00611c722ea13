//! The Kafka bus against the conformance suite (`plexus-conformance`),
//! on a real broker (`cargo test -p plexus-kafka`):
//!
//! - `machine`: every scenario against the machine's broker
//!   (`PLEXUS_TEST_KAFKA`, default `127.0.0.1:9092`, a tansu started by
//!   `.ci/tansu.sh`: patched, with its SQLite store indexed, see there);
//!   each handle is a
//!   connection of its own. Skips with
//!   one line when the broker is unreachable, fails then with `CI=true`.
//! - `interop`: `cloudevents_interop` with Python's confluent-kafka
//!   (binary content mode both ways) against the machine's broker.
//! - `restarted`: `reconnect` and `durable_across_restart` against a
//!   tansu this test starts on a free port with a SQLite store of its own,
//!   so that restarting it disturbs no other scenario.
//!   `reconnect` kills it (SIGKILL) mid-stream; `durable_across_restart`
//!   stops it (SIGTERM) and also kills a child process (this binary
//!   running the ignored `crash_child`) mid-stream.

mod server;

use plexus_conformance::Backend;
use plexus_core::bus::{BusError, Publisher};
use plexus_kafka::{KafkaBus, KafkaConfig};

/// The machine's broker, `host:port` (`PLEXUS_TEST_KAFKA`).
fn machine_brokers() -> String {
    let brokers = std::env::var("PLEXUS_TEST_KAFKA").unwrap_or_else(|_| {
        plexus_kafka::DEFAULT_URL
            .trim_start_matches("kafka://")
            .to_owned()
    });
    brokers.trim_start_matches("kafka://").to_owned()
}

/// The longest single wait of a scenario.
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

/// How to start the machine's broker, for skip lines.
const START_HINT: &str = "start it with `bash -c 'source .ci/tansu.sh && ensure_tansu'` \
                          or point PLEXUS_TEST_KAFKA at one";

/// A backend whose every handle is a new connection to `brokers`, or the
/// reason it is unavailable.
async fn backend(name: &str, brokers: &str) -> Result<Backend, String> {
    let config = KafkaConfig::new(brokers);
    let bus = KafkaBus::with_config(config.clone())
        .await
        .map_err(|e| e.to_string())?;
    let features = Publisher::features(&bus);
    let _ = Publisher::close(&bus).await;
    let for_subscribers = config.clone();
    Ok(Backend::new(
        name,
        features,
        move || KafkaBus::with_config(config.clone()),
        move || KafkaBus::with_config(for_subscribers.clone()),
    )
    .patience(PATIENCE))
}

mod machine {
    use super::*;

    async fn kafka_bus() -> Backend {
        let brokers = machine_brokers();
        let name = format!("kafka bus ({brokers})");
        backend(&name, &brokers)
            .await
            .unwrap_or_else(|reason| Backend::unavailable(name, format!("{reason}; {START_HINT}")))
    }

    // Against tansu 0.6.0 as published, `continue_after_subscribe_close`
    // and `new_subscriber_receives_old_messages` fail now and then: its
    // group coordinator keeps a member that leaves a forming group as the
    // group's leader, so a member joining as another leaves waits for an
    // assignment for good. `.ci/tansu.sh` builds tansu with that fixed.
    plexus_conformance::conformance_tests!(kafka_bus);
}

mod interop {
    use std::path::Path;

    use plexus_conformance::PythonClient;

    use super::*;

    /// cloudevents_interop with Python's confluent-kafka on the machine's
    /// broker; skips with one line without confluent-kafka or the broker
    /// (fails then with `CI=true`).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cloudevents_interop() {
        let brokers = machine_brokers();
        let name = format!("kafka bus ({brokers}) with Python");
        let setup = || async {
            let partitions = KafkaConfig::new(&brokers).partitions;
            let found = PythonClient::find(
                "Python confluent-kafka",
                "confluent_kafka",
                Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/kafka_interop.py"),
                "crates/plexus-kafka/tests/python/requirements.txt",
                {
                    let brokers = brokers.clone();
                    move |topic: &str| {
                        vec![brokers.clone(), topic.to_owned(), partitions.to_string()]
                    }
                },
            )
            .await;
            let foreign = match found {
                Ok(foreign) => foreign,
                Err(reason) => return Backend::unavailable(name.clone(), reason),
            };
            match backend(&name, &brokers).await {
                Ok(backend) => backend.foreign_client(foreign),
                Err(reason) => {
                    Backend::unavailable(name.clone(), format!("{reason}; {START_HINT}"))
                }
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
    use crate::server::PrivateTansu;

    /// The variable giving the crash child its broker.
    const CRASH_BROKERS_VAR: &str = "PLEXUS_KAFKA_CRASH_BROKERS";

    /// A backend on a broker of its own, restartable.
    async fn kafka_bus_on_own_broker() -> Backend {
        let name = "kafka bus (own tansu)";
        let server = match PrivateTansu::start().await {
            Ok(server) => Arc::new(server),
            Err(reason) => return Backend::unavailable(name, reason),
        };
        let brokers = server.brokers();
        let backend = match backend(name, &brokers).await {
            Ok(backend) => backend,
            Err(reason) => return Backend::unavailable(name, reason),
        };
        let (for_restart, for_reopen) = (Arc::clone(&server), server);
        backend
            .restart_broker(move || {
                let server = Arc::clone(&for_restart);
                async move { own_broker(server.crash_and_restart().await) }
            })
            .reopen(move || {
                let server = Arc::clone(&for_reopen);
                async move { own_broker(server.stop_and_restart().await) }
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
                    .env(CRASH_BROKERS_VAR, &brokers);
                command
            })
    }

    fn own_broker(restarted: Result<(), String>) -> Result<(), BusError> {
        restarted.map_err(|reason| BusError::backend("kafka bus (own tansu)", reason))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reconnect() {
        let _outcome = plexus_conformance::run("reconnect", kafka_bus_on_own_broker, |backend| {
            Box::pin(plexus_conformance::scenarios::reconnect(backend))
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "fails on tansu 0.6.0: the killed child led its groups; once that leader misses \
                its heartbeats, tansu makes the new member leader without a rebalance, so it \
                keeps the empty assignment it synced with and the audit group gets nothing; \
                run with --ignored"]
    async fn durable_across_restart() {
        let _outcome = plexus_conformance::run(
            "durable_across_restart",
            kafka_bus_on_own_broker,
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
        let brokers = std::env::var(CRASH_BROKERS_VAR)
            .expect("run by durable_across_restart with the broker");
        let backend = super::backend("kafka bus (crash child)", &brokers)
            .await
            .expect("the parent's broker");
        plexus_conformance::crash_child(&backend).await;
    }
}
