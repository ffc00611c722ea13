//! The PostgreSQL bus against the conformance suite
//! (`plexus-conformance`), on real servers:
//!
//! - `machine`: every scenario against the machine's server
//!   (`PLEXUS_TEST_POSTGRES`, default `postgres://postgres@127.0.0.1:5432/test`),
//!   each backend in a schema of its own (dropped after); each handle is a
//!   bus of its own (its own pool, as another process would be). Skips
//!   with one line when the server is unreachable, fails then with
//!   `CI=true`.
//! - `interop`: `cloudevents_interop` with Python's psycopg (inserting
//!   rows and claiming them with the documented SQL, both ways) against
//!   the machine's server.
//! - `restarted`: `reconnect` and `durable_across_restart` against a
//!   server this test makes (initdb) and starts on a free port, so that
//!   restarting it disturbs no other test. `reconnect` stops it in
//!   `immediate` mode (no shutdown checkpoint: crash recovery at the next
//!   start) mid-stream; `durable_across_restart` stops it cleanly, and
//!   also kills a child process (this binary running the ignored
//!   `crash_child`) with SIGKILL mid-stream.

mod common;
mod server;

use std::sync::Arc;
use std::time::Duration;

use common::Schema;
use plexus_conformance::Backend;
use plexus_core::bus::Publisher;
use plexus_postgres::{PostgresBus, PostgresConfig};

/// The longest single wait of a scenario. An acknowledgement returns once
/// committed to disk, and scenarios that acknowledge 5,000 or 10,000
/// messages one after the other wait for as many WAL flushes (2-4 ms each
/// on the test machines).
const PATIENCE: Duration = Duration::from_secs(90);

/// A backend whose every handle is a new bus on `schema`, or the reason it
/// is unavailable.
async fn backend(name: &str, schema: Arc<Schema>) -> Result<Backend, String> {
    backend_with(name, schema, |_| {}).await
}

async fn backend_with(
    name: &str,
    schema: Arc<Schema>,
    tune: fn(&mut PostgresConfig),
) -> Result<Backend, String> {
    let config = move |schema: &Schema| {
        let mut config = schema.config();
        tune(&mut config);
        config
    };
    let bus = PostgresBus::with_config(config(&schema))
        .await
        .map_err(|e| e.to_string())?;
    let features = Publisher::features(&bus);
    let _ = Publisher::close(&bus).await;
    let (for_publishers, for_subscribers) = (Arc::clone(&schema), schema);
    Ok(Backend::new(
        name,
        features,
        move || PostgresBus::with_config(config(&for_publishers)),
        move || PostgresBus::with_config(config(&for_subscribers)),
    )
    .patience(PATIENCE))
}

mod machine {
    use super::*;

    async fn postgres_bus() -> Backend {
        let url = common::machine_url();
        let name = format!("postgres bus ({url})");
        let schema = Arc::new(Schema::fresh(&url));
        backend(&name, schema).await.unwrap_or_else(|reason| {
            Backend::unavailable(name, format!("{reason}; {}", common::HOW_TO_START))
        })
    }

    plexus_conformance::conformance_tests!(postgres_bus);
}

mod interop {
    use std::path::Path;

    use plexus_conformance::PythonClient;

    use super::*;

    /// cloudevents_interop with Python's psycopg on the machine's server;
    /// skips with one line without psycopg or the server (fails then with
    /// `CI=true`).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cloudevents_interop() {
        let url = common::machine_url();
        let name = format!("postgres bus ({url}) with Python");
        let setup = || async {
            let schema = Arc::new(Schema::fresh(&url));
            let found = PythonClient::find(
                "Python psycopg",
                "psycopg",
                Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/postgres_interop.py"),
                "crates/plexus-postgres/tests/python/requirements.txt",
                {
                    let (url, schema) = (url.clone(), schema.name.clone());
                    move |topic: &str| vec![url.clone(), schema.clone(), topic.to_owned()]
                },
            )
            .await;
            let foreign = match found {
                Ok(foreign) => foreign,
                Err(reason) => return Backend::unavailable(name.clone(), reason),
            };
            match backend(&name, schema).await {
                Ok(backend) => backend.foreign_client(foreign),
                Err(reason) => Backend::unavailable(
                    name.clone(),
                    format!("{reason}; {}", common::HOW_TO_START),
                ),
            }
        };
        let _outcome = plexus_conformance::run("cloudevents_interop", setup, |backend| {
            Box::pin(plexus_conformance::scenarios::cloudevents_interop(backend))
        })
        .await;
    }
}

mod restarted {
    use super::*;
    use crate::server::PrivateServer;
    use plexus_core::bus::BusError;

    /// The variable giving the crash child its server (a URL naming the
    /// schema).
    const CRASH_URL_VAR: &str = "PLEXUS_POSTGRES_CRASH_URL";

    fn config(url: &str) -> PostgresConfig {
        let mut config = PostgresConfig::new(url);
        config.max_connections = 3;
        config
    }

    /// A backend on a server of its own, restartable.
    async fn postgres_bus_on_own_server() -> Backend {
        let name = "postgres bus (own server)";
        let server = match PrivateServer::start().await {
            Ok(server) => Arc::new(server),
            Err(reason) => return Backend::unavailable(name, reason),
        };
        let url = server.url();
        let bus = match PostgresBus::with_config(config(&url)).await {
            Ok(bus) => bus,
            Err(e) => return Backend::unavailable(name, e.to_string()),
        };
        let features = Publisher::features(&bus);
        let _ = Publisher::close(&bus).await;
        let (for_publishers, for_subscribers) = (url.clone(), url.clone());
        let (for_restart, for_reopen) = (Arc::clone(&server), server);
        Backend::new(
            name,
            features,
            move || PostgresBus::with_config(config(&for_publishers)),
            move || PostgresBus::with_config(config(&for_subscribers)),
        )
        .restart_broker(move || {
            let server = Arc::clone(&for_restart);
            async move { own_server(server.crash_and_restart().await) }
        })
        .reopen(move || {
            let server = Arc::clone(&for_reopen);
            async move { own_server(server.stop_and_restart().await) }
        })
        .patience(PATIENCE)
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
        restarted.map_err(|reason| BusError::backend("postgres bus (own server)", reason))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reconnect() {
        let _outcome =
            plexus_conformance::run("reconnect", postgres_bus_on_own_server, |backend| {
                Box::pin(plexus_conformance::scenarios::reconnect(backend))
            })
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn durable_across_restart() {
        let _outcome = plexus_conformance::run(
            "durable_across_restart",
            postgres_bus_on_own_server,
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
        let (for_publishers, for_subscribers) = (url.clone(), url);
        let backend = Backend::new(
            "postgres bus (crash child)",
            plexus_core::bus::Features::default(),
            move || PostgresBus::with_config(config(&for_publishers)),
            move || PostgresBus::with_config(config(&for_subscribers)),
        );
        plexus_conformance::crash_child(&backend).await;
    }
}
