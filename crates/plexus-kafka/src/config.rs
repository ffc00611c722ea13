//! [`KafkaConfig`]: where the brokers are and how the bus uses them.

use std::time::Duration;

use plexus_core::bus::BusError;

/// The default broker address.
pub const DEFAULT_URL: &str = "kafka://127.0.0.1:9092";

/// How a [`KafkaBus`](crate::KafkaBus) reaches the brokers and lays out
/// its topics. A plexus topic is the Kafka topic of the same name (made
/// with `partitions` partitions when it does not exist); a consumer group
/// `G` of topic `T` is the Kafka group `GROUP_PREFIX T/G`.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// The brokers, `host:port[,host:port…]` (librdkafka's
    /// `bootstrap.servers`).
    pub brokers: String,
    /// The partitions of a topic the bus creates. More partitions let
    /// more subscriber handles of one group work at once.
    pub partitions: i32,
    /// The replication factor of a topic the bus creates.
    pub replication: i32,
    /// The start of every Kafka consumer group id the bus uses.
    pub group_prefix: String,
    /// The largest message (record key, headers and value), bytes.
    pub max_message_bytes: usize,
    /// How long the producer gathers records before sending
    /// (librdkafka's `linger.ms`).
    pub linger: Duration,
    /// How long a publish may wait for the brokers' acknowledgement
    /// before it fails (librdkafka's `message.timeout.ms`).
    pub publish_timeout: Duration,
    /// How long a metadata, offset or topic request may take.
    pub request_timeout: Duration,
    /// Messages a consumer holds that its members have not acknowledged
    /// (handed out, waiting for their turn or fetched ahead); past it the
    /// consumer stops fetching until acknowledgements make room.
    pub consumer_buffer: usize,
    /// Kilobytes librdkafka fetches ahead per consumer
    /// (`queued.max.messages.kbytes`).
    pub fetch_ahead_kbytes: usize,
    /// How long a consumer's group session lasts without heartbeats
    /// (`session.timeout.ms`).
    pub session_timeout: Duration,
}

impl KafkaConfig {
    /// The defaults for the brokers at `brokers` (`host:port`): topics of
    /// 16 partitions, replication 1, groups prefixed `plexus/`, 1 MiB
    /// messages, 1 ms linger.
    pub fn new(brokers: impl Into<String>) -> Self {
        KafkaConfig {
            brokers: brokers.into(),
            partitions: 16,
            replication: 1,
            group_prefix: "plexus/".to_owned(),
            max_message_bytes: 1024 * 1024,
            linger: Duration::from_millis(1),
            publish_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
            consumer_buffer: 4096,
            fetch_ahead_kbytes: 16 * 1024,
            session_timeout: Duration::from_secs(10),
        }
    }

    /// Reads `kafka://host:port[,host:port…][?partitions=N]`; the rest
    /// default.
    pub fn from_url(url: &str) -> Result<Self, BusError> {
        let invalid = |reason: &str| {
            BusError::invalid(
                "url",
                format!(
                    "`{url}`: {reason}; expected kafka://HOST:PORT[,HOST:PORT…][?partitions=N]"
                ),
            )
        };
        let rest = url
            .strip_prefix("kafka://")
            .ok_or_else(|| invalid("the scheme is not kafka://"))?;
        let (brokers, query) = rest.split_once('?').unwrap_or((rest, ""));
        let brokers = brokers.trim_end_matches('/');
        let valid = |broker: &str| {
            broker
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
        };
        if brokers.is_empty() || brokers.contains('/') || !brokers.split(',').all(valid) {
            return Err(invalid("it names no HOST:PORT, or has a path"));
        }
        let mut config = KafkaConfig::new(brokers);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("partitions", n)) => match n.parse::<i32>() {
                    Ok(n) if (1..=10_000).contains(&n) => config.partitions = n,
                    _ => return Err(invalid("partitions is a whole number from 1 to 10000")),
                },
                _ => {
                    return Err(invalid(&format!(
                        "unknown parameter `{pair}` (known: partitions)"
                    )));
                }
            }
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::KafkaConfig;

    #[test]
    fn urls_name_the_brokers_and_optionally_the_partitions() {
        let config = KafkaConfig::from_url(super::DEFAULT_URL).unwrap();
        assert_eq!(
            (config.brokers.as_str(), config.partitions),
            ("127.0.0.1:9092", 16)
        );
        let config = KafkaConfig::from_url("kafka://a:1,b:2/?partitions=3").unwrap();
        assert_eq!((config.brokers.as_str(), config.partitions), ("a:1,b:2", 3));
        for (url, reason) in [
            ("nats://host:1", "scheme"),
            ("kafka://", "no HOST:PORT"),
            ("kafka://host", "no HOST:PORT"),
            ("kafka://host:1/path", "path"),
            ("kafka://host:1?partitions=0", "from 1 to 10000"),
            ("kafka://host:1?color=red", "unknown parameter `color=red`"),
        ] {
            let error = KafkaConfig::from_url(url).unwrap_err().to_string();
            assert!(error.contains(reason), "{url}: {error}");
        }
    }
}
