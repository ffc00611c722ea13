//! [`SqliteConfig`]: where the database is and the bounds of the bus.

use std::path::{Path, PathBuf};
use std::time::Duration;

use plexus_core::bus::BusError;

/// The database file and the bounds of a [`SqliteBus`](crate::SqliteBus).
#[derive(Debug, Clone)]
pub struct SqliteConfig {
    /// The database file, created if missing.
    pub path: PathBuf,
    /// How long a write waits for another process holding the database's
    /// write lock before failing.
    pub busy_timeout: Duration,
    /// Pending writes (publishes, answers, claims) the writer queues at
    /// most; callers wait for room beyond that (backpressure).
    pub queue_capacity: usize,
    /// Bytes of messages waiting for the writer at most; publishers wait
    /// for room beyond that, and a batch larger than it is refused with
    /// [`BusError::Full`].
    pub max_queued_bytes: usize,
    /// Messages one `publish` call may carry at most; a larger batch is
    /// refused with [`BusError::Full`].
    pub max_batch_messages: usize,
    /// Messages written in one transaction (one fsync) at most, over all
    /// the publishes it commits together.
    pub max_commit_messages: usize,
    /// The largest message accepted, bytes (payload, attributes, key and
    /// headers).
    pub max_message_bytes: usize,
    /// Messages a topic with consumer groups retains at most (not yet
    /// acknowledged by every group); publishing beyond fails with
    /// [`BusError::Full`] until the groups catch up.
    pub topic_capacity: u64,
    /// Messages that services' transactions wrote through the outbox and
    /// the writer has not yet moved into their topics, at most
    /// ([`SqliteOutbox`](crate::SqliteOutbox)); writing beyond fails with
    /// [`BusError::Full`] until the writer catches up (it holds back a
    /// full topic's messages).
    pub outbox_capacity: u64,
    /// Outbox messages the writer moves into their topics in one
    /// transaction at most.
    pub outbox_batch: u64,
    /// How long the writer may put off moving this process's newly
    /// committed outbox messages while its other writers (services'
    /// outbox transactions) hold the database, so that one of its
    /// transactions moves the messages of many of theirs, instead of
    /// each of theirs waiting for one of its. An idle database has them
    /// moved at once.
    pub outbox_delay: Duration,
    /// Latest messages a topic without any group keeps (for groups that
    /// will start at the earliest); older ones are deleted.
    pub retain_without_groups: u64,
    /// How often acknowledged messages are looked for and deleted.
    pub retention_interval: Duration,
    /// Messages deleted in one retention transaction at most.
    pub retention_batch: u64,
    /// Messages a group takes from the topic ahead of its deliveries at
    /// most (messages held back behind an earlier one of their key count
    /// too).
    pub group_window: u64,
    /// Bytes of lately published messages the writer keeps in memory, so
    /// that it hands them to subscriptions without reading them back from
    /// the database (0: always read them back).
    pub cache_bytes: usize,
    /// How often an idle subscription looks for messages written by
    /// another process (writes from this process wake it at once).
    pub poll_interval: Duration,
    /// A subscription without a group (a private group) that has not been
    /// seen alive for this long is removed, with what it held (it belonged
    /// to a process that stopped without leaving).
    pub private_group_expiry: Duration,
}

impl SqliteConfig {
    /// The defaults, on the database file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SqliteConfig {
            path: path.into(),
            busy_timeout: Duration::from_secs(5),
            queue_capacity: 1024,
            max_queued_bytes: 64 * 1024 * 1024,
            max_batch_messages: 10_000,
            max_commit_messages: 20_000,
            max_message_bytes: 1024 * 1024,
            topic_capacity: 1_000_000,
            outbox_capacity: 1_000_000,
            outbox_batch: 1_000,
            outbox_delay: Duration::from_millis(5),
            retain_without_groups: 10_000,
            retention_interval: Duration::from_secs(1),
            retention_batch: 5_000,
            group_window: 10_000,
            cache_bytes: 16 * 1024 * 1024,
            poll_interval: Duration::from_millis(500),
            private_group_expiry: Duration::from_secs(300),
        }
    }

    /// The defaults, on the database named by `url`: `sqlite://path/to/file.db`
    /// (relative), `sqlite:///abs/path.db` or `sqlite:path.db`.
    pub fn from_url(url: &str) -> Result<Self, BusError> {
        Ok(Self::new(path_of_url(url)?))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks every bound: an error names the option and what it accepts.
    pub(crate) fn check(&self) -> Result<(), BusError> {
        let positive: [(&'static str, u64); 10] = [
            ("queue_capacity", self.queue_capacity as u64),
            ("max_queued_bytes", self.max_queued_bytes as u64),
            ("max_batch_messages", self.max_batch_messages as u64),
            ("max_commit_messages", self.max_commit_messages as u64),
            ("max_message_bytes", self.max_message_bytes as u64),
            ("topic_capacity", self.topic_capacity),
            ("outbox_capacity", self.outbox_capacity),
            ("outbox_batch", self.outbox_batch),
            ("retention_batch", self.retention_batch),
            ("group_window", self.group_window),
        ];
        for (option, value) in positive {
            if value == 0 {
                return Err(BusError::invalid(option, "must be at least 1"));
            }
        }
        if self.max_queued_bytes > u32::MAX as usize {
            return Err(BusError::invalid(
                "max_queued_bytes",
                format!("must be at most {} (4 GiB)", u32::MAX),
            ));
        }
        if self.max_message_bytes > self.max_queued_bytes {
            return Err(BusError::invalid(
                "max_message_bytes",
                "must not exceed max_queued_bytes (a message must fit the writer's queue)",
            ));
        }
        let times = [
            ("retention_interval", self.retention_interval),
            ("poll_interval", self.poll_interval),
            ("private_group_expiry", self.private_group_expiry),
        ];
        for (option, value) in times {
            if value.is_zero() {
                return Err(BusError::invalid(option, "must be longer than zero"));
            }
        }
        Ok(())
    }
}

/// The file path in a `sqlite:` URL.
pub(crate) fn path_of_url(url: &str) -> Result<PathBuf, BusError> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| {
            BusError::invalid(
                "url",
                format!(
                    "`{}` is not a SQLite URL; expected sqlite://path/to/file.db",
                    excerpt(url)
                ),
            )
        })?;
    let path = rest.split(['?', '#']).next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Err(BusError::invalid(
            "url",
            format!(
                "`{}` names no database file (the SQLite bus is durable, an in-memory database is not); expected sqlite://path/to/file.db",
                excerpt(url)
            ),
        ));
    }
    Ok(PathBuf::from(path))
}

fn excerpt(text: &str) -> String {
    text.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::{SqliteConfig, path_of_url};

    #[test]
    fn urls_name_relative_and_absolute_files() {
        assert_eq!(
            path_of_url("sqlite://data/bus.db").unwrap(),
            PathBuf::from("data/bus.db")
        );
        assert_eq!(
            path_of_url("sqlite:///var/lib/bus.db").unwrap(),
            PathBuf::from("/var/lib/bus.db")
        );
        assert_eq!(
            path_of_url("sqlite:bus.db?mode=rwc").unwrap(),
            PathBuf::from("bus.db")
        );
    }

    #[test]
    fn other_urls_are_refused_with_the_expected_form() {
        let error = path_of_url("postgres://localhost/db").unwrap_err();
        assert!(error.to_string().contains("sqlite://path/to/file.db"));
        let error = path_of_url("sqlite::memory:").unwrap_err();
        assert!(error.to_string().contains("durable"), "{error}");
        assert!(path_of_url("sqlite://").is_err());
    }

    #[test]
    fn zero_bounds_are_refused_by_name() {
        let mut config = SqliteConfig::new("x.db");
        assert!(config.check().is_ok());
        config.group_window = 0;
        let error = config.check().unwrap_err();
        assert!(error.to_string().contains("group_window"), "{error}");
    }
}
