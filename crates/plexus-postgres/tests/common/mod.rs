//! What the tests share: the machine's server, and a schema of their own
//! for each backend or test, dropped when it is done.

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use plexus_postgres::PostgresConfig;
use sqlx::{ConnectOptions, Connection};

/// The variable naming the machine's server.
pub const URL_VAR: &str = "PLEXUS_TEST_POSTGRES";

/// The machine's server: `PLEXUS_TEST_POSTGRES`, or the default.
pub fn machine_url() -> String {
    std::env::var(URL_VAR).unwrap_or_else(|_| plexus_postgres::DEFAULT_URL.to_owned())
}

/// How to start the machine's server, for skip lines.
pub const HOW_TO_START: &str = "start it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` \
     (trust auth for postgres on 127.0.0.1, database test) or point PLEXUS_TEST_POSTGRES at one";

/// A schema of its own on the server at `url`, dropped (with everything
/// in it) when this is dropped.
pub struct Schema {
    pub url: String,
    pub name: String,
}

impl Schema {
    pub fn fresh(url: &str) -> Self {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        static SWEPT: std::sync::Once = std::sync::Once::new();
        // Where processes show in /proc (Linux), that is.
        if std::path::Path::new("/proc/self").exists() {
            SWEPT.call_once(|| sweep(url));
        }
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "plexus_t{}_{}_{nanos}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        );
        Schema {
            url: url.to_owned(),
            name,
        }
    }

    /// The bus configuration for this schema, with few connections (many
    /// buses run at once in the suite).
    pub fn config(&self) -> PostgresConfig {
        let mut config = PostgresConfig::new(&self.url);
        config.schema = self.name.clone();
        config.max_connections = 3;
        config
    }

    /// A plain connection to the server.
    pub async fn connect(&self) -> sqlx::PgConnection {
        self.url
            .parse::<sqlx::postgres::PgConnectOptions>()
            .expect("a PostgreSQL URL")
            .connect()
            .await
            .expect("connecting to PostgreSQL")
    }

    /// The number `sql` (a query with the schema as `{s}`) counts.
    pub async fn count(&self, connection: &mut sqlx::PgConnection, sql: &str) -> i64 {
        sqlx::query_scalar(&sql.replace("{s}", &format!("\"{}\"", self.name)))
            .fetch_one(connection)
            .await
            .expect("a count")
    }
}

/// The next delivery of `subscription`, within 30 s.
pub async fn next(subscription: &mut plexus_core::bus::Subscription) -> plexus_core::bus::Delivery {
    use futures::StreamExt as _;
    tokio::time::timeout(std::time::Duration::from_secs(30), subscription.next())
        .await
        .expect("a delivery")
        .expect("the subscription goes on")
        .expect("a delivery, not an error")
}

/// Drops the schemas test processes that no longer run left behind (a
/// run killed before its schemas' guards dropped them): `plexus_tPID_...`
/// whose process is gone.
fn sweep(url: &str) {
    let url = url.to_owned();
    let swept = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        runtime.block_on(async move {
            let options: sqlx::postgres::PgConnectOptions = url.parse().ok()?;
            let mut connection = options.connect().await.ok()?;
            let names: Vec<String> = sqlx::query_scalar(
                "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'plexus\\_t%'",
            )
            .fetch_all(&mut connection)
            .await
            .ok()?;
            for name in names {
                let pid = name
                    .strip_prefix("plexus_t")
                    .and_then(|rest| rest.split('_').next())
                    .and_then(|pid| pid.parse::<u32>().ok());
                let gone =
                    pid.is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists());
                if gone {
                    let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                        .execute(&mut connection)
                        .await;
                }
            }
            let _ = connection.close().await;
            Some(())
        })
    });
    let _ = swept.join();
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // Its own thread and runtime: drop may run inside a runtime.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async move {
                let options: sqlx::postgres::PgConnectOptions = url.parse().ok()?;
                let mut connection = options.connect().await.ok()?;
                let _ = sqlx::query("SET lock_timeout = '10s'")
                    .execute(&mut connection)
                    .await;
                let dropped = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                    .execute(&mut connection)
                    .await;
                let _ = connection.close().await;
                dropped.ok().map(|_| ())
            })
        });
        let _ = dropped.join();
    }
}

/// For a test that cannot reach the server: prints one line naming the
/// service and how to start it and returns (the test skips), or fails
/// with `CI=true`.
pub fn skip_or_fail(test: &str, reason: &str) {
    let line = format!("{test}: PostgreSQL unavailable: {reason}; {HOW_TO_START}");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{line} (CI=true: failing instead of skipping)");
    }
    println!("{line}: skipped");
}
