//! Opening a bus from its URL.

use std::sync::Arc;

use anyhow::{Context as _, bail};
use plexus_bus::memory::MemoryBus;
use plexus_core::bus::{Publisher, Subscriber};
use plexus_nats::NatsBus;
use plexus_postgres::PostgresBus;
use plexus_rabbitmq::RabbitBus;
use plexus_sqlite::SqliteBus;

/// The URL schemes `plexus pub`/`sub` understand, for error messages.
pub const SCHEMES: &[(&str, &str)] = &[
    ("memory:", "the in-memory bus of this process"),
    (
        "sqlite://PATH",
        "the durable bus in a SQLite file, created if missing",
    ),
    (
        "nats://HOST[:PORT][?stream=NAME]",
        "NATS JetStream, the stream PLEXUS unless named",
    ),
    (
        "amqp://USER:PASSWORD@HOST[:PORT]/VHOST",
        "RabbitMQ (AMQP 0-9-1), `%2f` for the default vhost",
    ),
    (
        "kafka://HOST[:PORT][,HOST[:PORT]...]",
        "Apache Kafka (or a broker speaking its protocol)",
    ),
    (
        "postgres://USER@HOST[:PORT]/DATABASE",
        "the bus in PostgreSQL tables (schema `plexus`)",
    ),
];

/// A bus's two halves.
pub(crate) struct Bus {
    pub(crate) publisher: Arc<dyn Publisher>,
    pub(crate) subscriber: Arc<dyn Subscriber>,
}

impl Bus {
    /// Closes both halves.
    pub(crate) async fn close(&self) -> anyhow::Result<()> {
        self.publisher.close().await.context("closing the bus")?;
        self.subscriber.close().await.context("closing the bus")?;
        Ok(())
    }
}

impl<B> From<B> for Bus
where
    B: Publisher + Subscriber + Clone + 'static,
{
    fn from(bus: B) -> Self {
        Bus {
            publisher: Arc::new(bus.clone()),
            subscriber: Arc::new(bus),
        }
    }
}

/// Opens the bus `url` names; an unknown scheme lists the known ones.
pub(crate) async fn open(url: &str) -> anyhow::Result<Bus> {
    let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or_default();
    match scheme {
        "memory" => {
            if url != "memory:" && url != "memory://" {
                bail!("`{url}`: the in-memory bus takes no address; write `memory:`");
            }
            Ok(MemoryBus::new().into())
        }
        "sqlite" => Ok(SqliteBus::connect(url)
            .await
            .with_context(|| format!("opening the SQLite bus `{url}`"))?
            .into()),
        "nats" => Ok(NatsBus::connect(url)
            .await
            .with_context(|| format!("connecting to the NATS bus `{url}`"))?
            .into()),
        "amqp" | "amqps" => Ok(RabbitBus::connect(url)
            .await
            .with_context(|| format!("connecting to the RabbitMQ bus `{url}`"))?
            .into()),
        "postgres" | "postgresql" => Ok(PostgresBus::connect(url)
            .await
            .with_context(|| format!("connecting to the PostgreSQL bus `{url}`"))?
            .into()),
        "kafka" => kafka(url).await,
        _ => {
            let known: Vec<String> = SCHEMES
                .iter()
                .map(|(scheme, what)| format!("`{scheme}` ({what})"))
                .collect();
            if scheme.is_empty() {
                bail!(
                    "`{url}` is not a bus URL (no scheme); supported: {}",
                    known.join(", ")
                );
            }
            bail!(
                "unknown bus scheme `{scheme}:` in `{url}`; supported: {}",
                known.join(", ")
            )
        }
    }
}

#[cfg(feature = "kafka")]
async fn kafka(url: &str) -> anyhow::Result<Bus> {
    Ok(plexus_kafka::KafkaBus::connect(url)
        .await
        .with_context(|| format!("connecting to the Kafka bus `{url}`"))?
        .into())
}

#[cfg(not(feature = "kafka"))]
async fn kafka(url: &str) -> anyhow::Result<Bus> {
    bail!(
        "`{url}`: this plexus was built without Kafka; build it with `--features kafka` \
         (on by default)"
    )
}

#[cfg(test)]
mod tests {
    use super::open;

    #[tokio::test]
    async fn unknown_and_missing_schemes_list_the_supported_ones() {
        let error = open("kafkaa://x").await.err().unwrap().to_string();
        assert!(error.contains("unknown bus scheme `kafkaa:`"), "{error}");
        assert!(error.contains("`memory:`"), "{error}");
        assert!(error.contains("`nats://HOST"), "{error}");
        let error = open("nats://host/path").await.err().unwrap();
        assert!(format!("{error:#}").contains("has a path"), "{error:#}");
        let error = open("orders").await.err().unwrap().to_string();
        assert!(error.contains("no scheme"), "{error}");
        let error = open("memory://host").await.err().unwrap().to_string();
        assert!(error.contains("takes no address"), "{error}");
        assert!(open("memory:").await.is_ok());
    }
}
