//! [`RabbitConfig`]: where the broker is and how the bus lays out its
//! exchange and queues.

use std::time::Duration;

use lapin::uri::{AMQPAuthority, AMQPQueryString, AMQPScheme, AMQPUri, AMQPUserInfo};
use percent_encoding::percent_decode_str;
use plexus_core::bus::BusError;

/// The default broker address: the guest user on the local broker's
/// default virtual host `/`.
pub const DEFAULT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// How a [`RabbitBus`](crate::RabbitBus) reaches the broker and lays out
/// its topology: one durable topic exchange whose routing keys are the
/// topics; one durable quorum queue per consumer group
/// (`QUEUE_PREFIX.TOPIC.GROUP`, shortened and hashed when long), bound
/// to its topic; one dead-letter exchange and queue keeping the messages
/// plexus rejects as unreadable.
#[derive(Clone)]
pub struct RabbitConfig {
    /// The broker, virtual host and credentials.
    pub uri: AMQPUri,
    /// The topic exchange every topic is a routing key of (declared
    /// durable if missing).
    pub exchange: String,
    /// The first part of every queue's name.
    pub queue_prefix: String,
    /// Where every queue dead-letters what plexus rejects: a durable topic
    /// exchange `EXCHANGE.dead` with one bounded queue
    /// `QUEUE_PREFIX.dead` bound to all of it. `None`: rejected messages
    /// are dropped (with an error logged).
    pub dead_letters: Option<DeadLetters>,
    /// The largest message (payload plus attributes and headers) a
    /// publish accepts, bytes. RabbitMQ's own limit (`max_message_size`,
    /// 128 MiB on 3.10) must not be lower.
    pub max_message_bytes: usize,
    /// The most messages a group's queue holds; past it the broker refuses
    /// new ones and a publish fails with `BusError::Full` (RabbitMQ's
    /// `reject-publish` overflow).
    pub max_queue_length: u64,
    /// How long a group's queue outlives its last member (RabbitMQ's
    /// `x-expires`); `None`: it stays until deleted, and keeps collecting
    /// the topic's messages for the group.
    pub group_expiry: Option<Duration>,
    /// How long the queue of a subscription without a group outlives its
    /// subscriber when the subscriber could not delete it (a crash, a lost
    /// connection); it is also how long such a subscription may resume
    /// after a lost connection without missing messages.
    pub private_expiry: Duration,
    /// How long a subscription keeps trying to resume (a new connection, a
    /// new consumer on its queue) after its connection was lost, before
    /// it yields an error and ends.
    pub resume_within: Duration,
    /// How long connecting (TCP and the AMQP handshake) may take.
    pub connect_timeout: Duration,
    /// How many channels (publisher confirms on each) the bus's publishes
    /// share, a batch to a channel, taken in turn (at least one). The
    /// broker runs each channel as one process: on a single channel,
    /// concurrent publishers queue behind each other's messages and
    /// confirms.
    pub publishing_channels: usize,
}

/// The dead-letter exchange and queue (see [`RabbitConfig::dead_letters`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetters {
    /// The dead-letter exchange (a topic exchange; dead letters keep their
    /// topic as routing key).
    pub exchange: String,
    /// The queue keeping every dead letter.
    pub queue: String,
    /// The most dead letters the queue keeps; past it the oldest go.
    pub max_length: u64,
}

impl std::fmt::Debug for RabbitConfig {
    /// Shows everything but the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitConfig")
            .field("broker", &display_uri(&self.uri))
            .field("exchange", &self.exchange)
            .field("queue_prefix", &self.queue_prefix)
            .field("dead_letters", &self.dead_letters)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("max_queue_length", &self.max_queue_length)
            .field("group_expiry", &self.group_expiry)
            .field("private_expiry", &self.private_expiry)
            .field("resume_within", &self.resume_within)
            .field("connect_timeout", &self.connect_timeout)
            .field("publishing_channels", &self.publishing_channels)
            .finish()
    }
}

impl RabbitConfig {
    /// The defaults for the broker at `uri`: exchange `plexus`, queues
    /// `plexus.*`, dead letters in `plexus.dead` (100,000 at most), 16 MiB
    /// messages, 1,000,000 messages per group queue, group queues kept
    /// until deleted, 60 s for a lost connection, 4 publishing channels.
    pub fn new(uri: AMQPUri) -> Self {
        RabbitConfig {
            uri,
            exchange: "plexus".to_owned(),
            queue_prefix: "plexus".to_owned(),
            dead_letters: Some(DeadLetters {
                exchange: "plexus.dead".to_owned(),
                queue: "plexus.dead".to_owned(),
                max_length: 100_000,
            }),
            max_message_bytes: 16 * 1024 * 1024,
            max_queue_length: 1_000_000,
            group_expiry: None,
            private_expiry: Duration::from_secs(60),
            resume_within: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
            publishing_channels: 4,
        }
    }

    /// Reads `amqp://[USER[:PASSWORD]@]HOST[:PORT][/VHOST][?exchange=NAME]`
    /// (the virtual host percent-encoded: `%2f` is `/`, the default; no
    /// path is `/` too); the rest default. `exchange=NAME` also names the
    /// queues (`NAME.*`) and the dead letters (`NAME.dead`).
    pub fn from_url(url: &str) -> Result<Self, BusError> {
        let invalid = |reason: &str| {
            BusError::invalid(
                "url",
                format!(
                    "`{}`: {reason}; expected amqp://[USER[:PASSWORD]@]HOST[:PORT][/VHOST][?exchange=NAME]",
                    without_password(url)
                ),
            )
        };
        let rest = match url.split_once("://") {
            Some(("amqp", rest)) => rest,
            Some(("amqps", _)) => {
                return Err(invalid(
                    "amqps (TLS) is not built into plexus-rabbitmq; use amqp:// on a trusted network",
                ));
            }
            _ => return Err(invalid("the scheme is not amqp://")),
        };
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, vhost) = match rest.split_once('/') {
            Some((authority, "")) | Some((authority, "%2f" | "%2F")) => (authority, "/".to_owned()),
            Some((authority, vhost)) => {
                let decoded = decode(vhost).ok_or_else(|| invalid("the vhost is not UTF-8"))?;
                if vhost.contains('/') {
                    return Err(invalid("a vhost's `/` is written %2f"));
                }
                (authority, decoded)
            }
            None => (rest, "/".to_owned()),
        };
        let (userinfo, address) = match authority.rsplit_once('@') {
            Some((userinfo, address)) => (Some(userinfo), address),
            None => (None, authority),
        };
        let userinfo = match userinfo {
            Some(userinfo) => {
                let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                AMQPUserInfo {
                    username: decode(user).ok_or_else(|| invalid("the user is not UTF-8"))?,
                    password: decode(password)
                        .ok_or_else(|| invalid("the password is not UTF-8"))?,
                }
            }
            None => AMQPUserInfo::default(),
        };
        let (host, port) = match address.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || address.starts_with('[') => {
                let port = port
                    .parse::<u16>()
                    .map_err(|_| invalid("the port is not a number from 1 to 65535"))?;
                (host, port)
            }
            _ => (address, 5672),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || port == 0 {
            return Err(invalid("it names no host, or port 0"));
        }
        let mut config = RabbitConfig::new(AMQPUri {
            scheme: AMQPScheme::AMQP,
            authority: AMQPAuthority {
                userinfo,
                host: host.to_owned(),
                port,
            },
            vhost,
            query: AMQPQueryString::default(),
        });
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("exchange", name)) if valid_name(name) => config.name_after(name),
                Some(("exchange", _)) => {
                    return Err(invalid(
                        "an exchange name is 1 to 64 letters, digits, `-`, `_` or `.`",
                    ));
                }
                _ => {
                    return Err(invalid(&format!(
                        "unknown parameter `{pair}` (known: exchange)"
                    )));
                }
            }
        }
        Ok(config)
    }

    /// Names the exchange `name`, the queues `name.*` and the dead letters
    /// `name.dead`.
    pub fn name_after(&mut self, name: &str) {
        self.exchange = name.to_owned();
        self.queue_prefix = name.to_owned();
        if let Some(dead) = &mut self.dead_letters {
            dead.exchange = format!("{name}.dead");
            dead.queue = format!("{name}.dead");
        }
    }

    /// The broker's address without the password, for messages.
    pub fn broker(&self) -> String {
        display_uri(&self.uri)
    }
}

fn decode(text: &str) -> Option<String> {
    percent_decode_str(text)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// `amqp://USER@HOST:PORT/VHOST`, the password left out.
fn display_uri(uri: &AMQPUri) -> String {
    let vhost = if uri.vhost == "/" {
        "%2f".to_owned()
    } else {
        uri.vhost.clone()
    };
    format!(
        "amqp://{}@{}:{}/{vhost}",
        uri.authority.userinfo.username, uri.authority.host, uri.authority.port
    )
}

/// `url` with any password replaced by `***`.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, address)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{address}")
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::{DEFAULT_URL, RabbitConfig};

    #[test]
    fn the_default_url_names_the_local_broker() {
        let config = RabbitConfig::from_url(DEFAULT_URL).unwrap();
        let authority = &config.uri.authority;
        assert_eq!(
            (
                authority.host.as_str(),
                authority.port,
                authority.userinfo.username.as_str(),
                authority.userinfo.password.as_str(),
                config.uri.vhost.as_str()
            ),
            ("127.0.0.1", 5672, "guest", "guest", "/")
        );
        assert_eq!(config.exchange, "plexus");
        assert_eq!(config.broker(), "amqp://guest@127.0.0.1:5672/%2f");
        assert!(!format!("{config:?}").contains("guest:guest"));
    }

    #[test]
    fn urls_name_vhost_port_and_exchange() {
        let config =
            RabbitConfig::from_url("amqp://u%40x:p%3Aw@rabbit.local/shop%2Feu?exchange=orders")
                .unwrap();
        let authority = &config.uri.authority;
        assert_eq!(authority.userinfo.username, "u@x");
        assert_eq!(authority.userinfo.password, "p:w");
        assert_eq!(
            (authority.host.as_str(), authority.port),
            ("rabbit.local", 5672)
        );
        assert_eq!(config.uri.vhost, "shop/eu");
        assert_eq!(config.exchange, "orders");
        assert_eq!(config.queue_prefix, "orders");
        assert_eq!(config.dead_letters.unwrap().queue, "orders.dead");
        let config = RabbitConfig::from_url("amqp://[::1]:5673").unwrap();
        assert_eq!(
            (
                config.uri.authority.host.as_str(),
                config.uri.authority.port
            ),
            ("::1", 5673)
        );
        assert_eq!(config.uri.vhost, "/");
    }

    #[test]
    fn bad_urls_say_what_is_wrong_without_the_password() {
        for (url, reason) in [
            ("nats://host", "scheme"),
            ("amqps://host", "TLS"),
            ("amqp://", "no host"),
            ("amqp://host:99999", "port"),
            ("amqp://host/a/b", "%2f"),
            ("amqp://host?exchange=a*b", "exchange name"),
            (
                "amqp://u:secret@host?color=red",
                "unknown parameter `color=red`",
            ),
        ] {
            let error = RabbitConfig::from_url(url).unwrap_err().to_string();
            assert!(error.contains(reason), "{url}: {error}");
            assert!(!error.contains("secret"), "{url}: {error}");
        }
    }
}
