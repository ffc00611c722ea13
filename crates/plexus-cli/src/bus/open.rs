//! Opening a bus from its URL.

use std::sync::Arc;

use anyhow::{Context as _, bail};
use plexus_bus::memory::MemoryBus;
use plexus_core::bus::{Publisher, Subscriber};
use plexus_nats::NatsBus;
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

/// Opens the bus `url` names; an unknown scheme lists the known ones.
pub(crate) async fn open(url: &str) -> anyhow::Result<Bus> {
    let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or_default();
    match scheme {
        "memory" => {
            if url != "memory:" && url != "memory://" {
                bail!("`{url}`: the in-memory bus takes no address; write `memory:`");
            }
            let bus = MemoryBus::new();
            Ok(Bus {
                publisher: Arc::new(bus.clone()),
                subscriber: Arc::new(bus),
            })
        }
        "sqlite" => {
            let bus = SqliteBus::connect(url)
                .await
                .with_context(|| format!("opening the SQLite bus `{url}`"))?;
            Ok(Bus {
                publisher: Arc::new(bus.clone()),
                subscriber: Arc::new(bus),
            })
        }
        "nats" => {
            let bus = NatsBus::connect(url)
                .await
                .with_context(|| format!("connecting to the NATS bus `{url}`"))?;
            Ok(Bus {
                publisher: Arc::new(bus.clone()),
                subscriber: Arc::new(bus),
            })
        }
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
