//! [`PostgresConfig`]: where the database is and how the bus uses it.

use std::time::Duration;

use plexus_core::bus::BusError;

/// The default database: the machine's PostgreSQL, database `test`.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The schema the bus's tables live in unless told otherwise.
pub const DEFAULT_SCHEMA: &str = "plexus";

/// The longest schema name accepted, bytes (PostgreSQL's identifiers are
/// at most 63).
const MAX_SCHEMA_LEN: usize = 48;

/// How a [`PostgresBus`](crate::PostgresBus) reaches the database and
/// bounds its work. Every bus on the same database and schema shares the
/// same topics and groups.
#[derive(Debug, Clone)]
pub struct PostgresConfig {
    /// The database, `postgres://user[:password]@host[:port]/database`
    /// (with any of sqlx's connection parameters), without the `schema`
    /// parameter [`from_url`](Self::from_url) takes off.
    pub url: String,
    /// The schema holding the bus's tables and functions (created if
    /// missing): letters, digits and `_`, starting with a letter or `_`.
    pub schema: String,
    /// The most connections the bus holds open for publishing, claiming
    /// and answering (two more come on top: one listening for wake-ups,
    /// one sending them).
    pub max_connections: u32,
    /// How long opening a connection, or waiting for a free one, may take.
    pub connect_timeout: Duration,
    /// How often a subscription with nothing to take looks again without
    /// a wake-up (a lost notification, a server restart, a publisher that
    /// did not notify).
    pub poll_interval: Duration,
    /// The largest message (payload, attributes, key and headers) a
    /// publish accepts, bytes.
    pub max_message_bytes: usize,
    /// The most messages one publish may carry.
    pub max_batch_messages: usize,
    /// The most bytes (as [`max_message_bytes`](Self::max_message_bytes)
    /// counts them) one publish may carry.
    pub max_batch_bytes: usize,
    /// The most messages with a key a consumer group holds taken and
    /// unacknowledged (leased, waiting for a redelivery, or waiting behind
    /// an earlier message of their key); claims take no new messages
    /// beyond it. (Messages without a key are leased as they are taken,
    /// so the members' `max_in_flight` bounds them.)
    pub group_window: u32,
    /// How often the bus deletes messages every group has acknowledged,
    /// old messages and abandoned private groups.
    pub retention_interval: Duration,
    /// Messages older than this are deleted, acknowledged or not.
    pub max_age: Duration,
    /// A private group (a subscription without a group) whose member has
    /// not claimed for this long is deleted (its process died without
    /// removing it).
    pub private_group_expiry: Duration,
}

impl PostgresConfig {
    /// The defaults for the database at `url`: schema `plexus`, 8
    /// connections, a 500 ms polling fallback, 1 MiB messages, 10,000
    /// messages and 64 MiB per publish, 10,000 messages per group window,
    /// messages kept 7 days at most.
    pub fn new(url: impl Into<String>) -> Self {
        PostgresConfig {
            url: url.into(),
            schema: DEFAULT_SCHEMA.to_owned(),
            max_connections: 8,
            connect_timeout: Duration::from_secs(5),
            poll_interval: Duration::from_millis(500),
            max_message_bytes: 1024 * 1024,
            max_batch_messages: 10_000,
            max_batch_bytes: 64 * 1024 * 1024,
            group_window: 10_000,
            retention_interval: Duration::from_secs(30),
            max_age: Duration::from_secs(7 * 24 * 3600),
            private_group_expiry: Duration::from_secs(3600),
        }
    }

    /// Reads `postgres://user@host[:port]/database[?schema=NAME&...]`
    /// (or `postgresql://`): `schema` picks the bus's schema, every other
    /// parameter goes to the connection; the rest default.
    pub fn from_url(url: &str) -> Result<Self, BusError> {
        let invalid = |reason: &str| {
            BusError::invalid(
                "url",
                format!(
                    "`{url}`: {reason}; expected postgres://USER@HOST[:PORT]/DATABASE[?schema=NAME]"
                ),
            )
        };
        let rest = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
            .ok_or_else(|| invalid("the scheme is not postgres:// or postgresql://"))?;
        let (address, query) = rest.split_once('?').unwrap_or((rest, ""));
        if address.is_empty() || address.starts_with('/') {
            return Err(invalid("it names no host"));
        }
        let mut schema = None;
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("schema", name)) => schema = Some(name.to_owned()),
                _ => kept.push(pair),
            }
        }
        let scheme = &url[..url.len() - rest.len()];
        let mut config = if kept.is_empty() {
            PostgresConfig::new(format!("{scheme}{address}"))
        } else {
            PostgresConfig::new(format!("{scheme}{address}?{}", kept.join("&")))
        };
        if let Some(schema) = schema {
            config.schema = schema;
        }
        config.check()?;
        Ok(config)
    }

    /// Checks the bounds: an error names the setting and what it accepts.
    pub fn check(&self) -> Result<(), BusError> {
        if !valid_schema(&self.schema) {
            return Err(BusError::invalid(
                "schema",
                format!(
                    "`{}` is not a schema name the bus accepts: 1 to {MAX_SCHEMA_LEN} ASCII letters, digits or `_`, not starting with a digit",
                    self.schema.chars().take(64).collect::<String>()
                ),
            ));
        }
        let positive = [
            ("max_connections", self.max_connections as usize),
            ("max_message_bytes", self.max_message_bytes),
            ("max_batch_messages", self.max_batch_messages),
            ("max_batch_bytes", self.max_batch_bytes),
            ("group_window", self.group_window as usize),
        ];
        for (option, value) in positive {
            if value == 0 {
                return Err(BusError::invalid(option, "must be at least 1"));
            }
        }
        let durations = [
            ("connect_timeout", self.connect_timeout),
            ("poll_interval", self.poll_interval),
            ("retention_interval", self.retention_interval),
            ("max_age", self.max_age),
            ("private_group_expiry", self.private_group_expiry),
        ];
        for (option, value) in durations {
            if value.is_zero() {
                return Err(BusError::invalid(option, "must be longer than zero"));
            }
        }
        // bytea values are at most 1 GiB; keep well clear of it.
        if self.max_message_bytes > 256 * 1024 * 1024 {
            return Err(BusError::invalid(
                "max_message_bytes",
                "must be at most 256 MiB (PostgreSQL values are at most 1 GiB)",
            ));
        }
        Ok(())
    }
}

fn valid_schema(name: &str) -> bool {
    (1..=MAX_SCHEMA_LEN).contains(&name.len())
        && !name.as_bytes()[0].is_ascii_digit()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::PostgresConfig;

    #[test]
    fn urls_name_the_database_and_optionally_the_schema() {
        let config = PostgresConfig::from_url(super::DEFAULT_URL).unwrap();
        assert_eq!(config.url, super::DEFAULT_URL);
        assert_eq!(config.schema, "plexus");
        let config = PostgresConfig::from_url(
            "postgresql://u:p@db:5433/shop?schema=bus_1&sslmode=disable&application_name=x",
        )
        .unwrap();
        assert_eq!(
            config.url,
            "postgresql://u:p@db:5433/shop?sslmode=disable&application_name=x"
        );
        assert_eq!(config.schema, "bus_1");
        for (url, reason) in [
            ("nats://host", "scheme"),
            ("postgres://", "no host"),
            ("postgres:///db", "no host"),
            ("postgres://h/db?schema=a-b", "schema name"),
            ("postgres://h/db?schema=1a", "schema name"),
            ("postgres://h/db?schema=", "schema name"),
        ] {
            let error = PostgresConfig::from_url(url).unwrap_err().to_string();
            assert!(error.contains(reason), "{url}: {error}");
        }
    }

    #[test]
    fn bounds_are_checked_by_name() {
        let mut config = PostgresConfig::new(super::DEFAULT_URL);
        config.group_window = 0;
        assert!(
            config
                .check()
                .unwrap_err()
                .to_string()
                .contains("group_window")
        );
        let mut config = PostgresConfig::new(super::DEFAULT_URL);
        config.poll_interval = std::time::Duration::ZERO;
        assert!(
            config
                .check()
                .unwrap_err()
                .to_string()
                .contains("poll_interval")
        );
        let mut config = PostgresConfig::new(super::DEFAULT_URL);
        config.max_message_bytes = 1 << 30;
        assert!(config.check().unwrap_err().to_string().contains("256 MiB"));
    }
}
