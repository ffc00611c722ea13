//! The bus the relay publishes to (`--to`), and tidying up after the run.
//!
//! Every topic of a run is `bench.outbox.RUN.…`, RUN fresh, so runs on
//! the same destination never see each other's messages. On NATS the
//! run's subjects are purged from the stream at the end; elsewhere they
//! stay until the destination's retention takes them (a Kafka topic stays
//! until deleted).

use std::sync::Arc;

use anyhow::Context as _;
use async_nats::jetstream;
use plexus_core::bus::Publisher;
use plexus_nats::NatsConfig;

use super::setup::redact;
use crate::bus::open::{Bus, open};

/// The destination bus of a run.
pub struct Destination {
    url: String,
    bus: Bus,
}

impl Destination {
    /// Opens the bus `url` names.
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        let bus = open(url)
            .await
            .with_context(|| format!("opening the destination --to {}", redact(url)))?;
        Ok(Destination {
            url: url.to_owned(),
            bus,
        })
    }

    /// Its publishing half.
    pub fn publisher(&self) -> Arc<dyn Publisher> {
        Arc::clone(&self.bus.publisher)
    }

    /// Removes what the run `topics` (the run's topic prefix) published,
    /// where the destination allows it, then closes it. Failing to tidy
    /// up is reported and does not fail the run.
    pub async fn close(self, topics: &str) {
        if self.url.starts_with("nats:")
            && let Err(error) = purge_nats(&self.url, topics).await
        {
            eprintln!(
                "warning: could not purge the run's subjects (`{topics}.>`) from the NATS stream: {error:#}; \
                 they go with the stream's age and size bounds"
            );
        }
        if let Err(error) = self.bus.close().await {
            eprintln!("warning: closing the destination failed: {error:#}");
        }
    }
}

/// Purges the subjects of the topics under `topics` from the stream the
/// NATS bus at `url` uses.
async fn purge_nats(url: &str, topics: &str) -> anyhow::Result<()> {
    let config = NatsConfig::from_url(url).context("reading the NATS URL")?;
    let client = async_nats::connect(config.url.as_str())
        .await
        .with_context(|| format!("connecting to NATS at {}", config.url))?;
    let stream = jetstream::new(client)
        .get_stream(&config.stream)
        .await
        .with_context(|| format!("finding the stream {}", config.stream))?;
    stream
        .purge()
        .filter(format!("{}.{topics}.>", config.subject_prefix))
        .await
        .with_context(|| format!("purging from the stream {}", config.stream))?;
    Ok(())
}
