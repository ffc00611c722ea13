//! [`NatsConfig`]: where the server is and how the bus uses JetStream.

use std::time::Duration;

use plexus_core::bus::BusError;

/// The default server address.
pub const DEFAULT_URL: &str = "nats://127.0.0.1:4222";

/// How a [`NatsBus`](crate::NatsBus) reaches the server and lays out its
/// stream. Every topic is a subject `SUBJECT_PREFIX.TOPIC` of one stream;
/// every consumer group a durable pull consumer on it.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// The server, `nats://host:port`.
    pub url: String,
    /// The stream holding every topic (created if missing).
    pub stream: String,
    /// The first subject token of every topic.
    pub subject_prefix: String,
    /// The stream's size bound, bytes: past it the oldest messages go,
    /// consumed or not.
    pub max_bytes: i64,
    /// The stream's age bound: older messages go, consumed or not.
    pub max_age: Duration,
    /// Whether each message carries a `Nats-Msg-Id` (its topic, source
    /// and id) so that the stream drops a republished duplicate (a publish
    /// retried after an error) within `duplicate_window`. Off by default:
    /// it cost 10-20 % of publish throughput on the bus bench.
    pub deduplicate: bool,
    /// How long the server remembers message ids to drop a republished
    /// duplicate.
    pub duplicate_window: Duration,
    /// Deliveries a consumer group may hold unacknowledged across all its
    /// members.
    pub max_ack_pending: i64,
    /// How long a publish or an answer waits for the server's
    /// acknowledgement.
    pub request_timeout: Duration,
    /// How long one pull for messages waits on the server before it is
    /// renewed.
    pub pull_wait: Duration,
    /// How long connecting may take.
    pub connect_timeout: Duration,
}

impl NatsConfig {
    /// The defaults for the server at `url`: stream `PLEXUS` with subjects
    /// `plexus.>`, 1 GiB and 7 days at most, 2 minutes of duplicate
    /// detection, 10,000 unacknowledged deliveries per group.
    pub fn new(url: impl Into<String>) -> Self {
        NatsConfig {
            url: url.into(),
            stream: "PLEXUS".to_owned(),
            subject_prefix: "plexus".to_owned(),
            max_bytes: 1 << 30,
            max_age: Duration::from_secs(7 * 24 * 3600),
            deduplicate: false,
            duplicate_window: Duration::from_secs(120),
            max_ack_pending: 10_000,
            request_timeout: Duration::from_secs(5),
            pull_wait: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(3),
        }
    }

    /// Reads `nats://host[:port][?stream=NAME&dedupe=true]`; the rest
    /// default.
    pub fn from_url(url: &str) -> Result<Self, BusError> {
        let invalid = |reason: &str| {
            BusError::invalid(
                "url",
                format!(
                    "`{url}`: {reason}; expected nats://HOST[:PORT][?stream=NAME&dedupe=true|false]"
                ),
            )
        };
        let rest = url
            .strip_prefix("nats://")
            .ok_or_else(|| invalid("the scheme is not nats://"))?;
        let (address, query) = rest.split_once('?').unwrap_or((rest, ""));
        let address = address.trim_end_matches('/');
        if address.is_empty() || address.contains('/') {
            return Err(invalid("it names no host, or has a path"));
        }
        let mut config = NatsConfig::new(format!("nats://{address}"));
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("stream", name)) if valid_stream_name(name) => {
                    config.stream = name.to_owned()
                }
                Some(("stream", _)) => {
                    return Err(invalid(
                        "a stream name is 1 to 64 letters, digits, `-` or `_`",
                    ));
                }
                Some(("dedupe", "true")) => config.deduplicate = true,
                Some(("dedupe", "false")) => config.deduplicate = false,
                Some(("dedupe", _)) => return Err(invalid("dedupe is true or false")),
                _ => {
                    return Err(invalid(&format!(
                        "unknown parameter `{pair}` (known: stream, dedupe)"
                    )));
                }
            }
        }
        Ok(config)
    }
}

fn valid_stream_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::NatsConfig;

    #[test]
    fn urls_name_the_server_and_optionally_the_stream() {
        let config = NatsConfig::from_url("nats://127.0.0.1:4222").unwrap();
        assert_eq!(
            (config.url.as_str(), config.stream.as_str()),
            ("nats://127.0.0.1:4222", "PLEXUS")
        );
        let config = NatsConfig::from_url("nats://nats.local/?stream=ORDERS&dedupe=true").unwrap();
        assert_eq!(
            (config.url.as_str(), config.stream.as_str()),
            ("nats://nats.local", "ORDERS")
        );
        assert!(config.deduplicate);
        for (url, reason) in [
            ("amqp://host", "scheme"),
            ("nats://", "no host"),
            ("nats://host/path", "path"),
            ("nats://host?stream=a.b", "stream name"),
            ("nats://host?color=red", "unknown parameter `color=red`"),
            ("nats://host?dedupe=yes", "true or false"),
        ] {
            let error = NatsConfig::from_url(url).unwrap_err().to_string();
            assert!(error.contains(reason), "{url}: {error}");
        }
    }
}
