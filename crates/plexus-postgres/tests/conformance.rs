//! The PostgreSQL bus against the conformance suite
//! (`plexus-conformance`), on real servers:
//!
//! - `machine`: every scenario against the machine's server
//!   (`PLEXUS_TEST_POSTGRES`, default `postgres://postgres@127.0.0.1:5432/test`),
//!   each backend in a schema of its own (dropped after); each handle is a
//!   bus of its own (its own pool, as another process would be). Skips
//!   with one line when the server is unreachable, fails then with
//!   `CI=true`.

mod common;

use std::sync::Arc;

use common::Schema;
use plexus_conformance::Backend;
use plexus_core::bus::Publisher;
use plexus_postgres::{PostgresBus, PostgresConfig};

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
    ))
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
