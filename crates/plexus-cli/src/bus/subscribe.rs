//! `plexus sub URL TOPIC`: prints the topic's messages as CloudEvents JSON
//! lines, acknowledging each once printed.

use std::io::Write as _;
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt as _;
use plexus_core::bus::{StartFrom, SubscribeOptions};

use super::event_json::to_json;
use super::open::open;

/// Where a new group starts.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum From {
    /// Only messages published from now on.
    New,
    /// Every retained message.
    Earliest,
}

/// Arguments of `plexus sub`.
#[derive(Debug, clap::Args)]
pub struct SubArgs {
    /// The bus, e.g. `memory:`.
    url: String,
    /// The topic.
    topic: String,
    /// The consumer group to join (default: a group of its own).
    #[arg(long)]
    group: Option<String>,
    /// Where a new group starts.
    #[arg(long, value_enum, default_value = "new")]
    from: From,
    /// Exit after this many messages.
    #[arg(long)]
    count: Option<u64>,
    /// How long a printed message may stay unacknowledged (e.g. `30s`).
    #[arg(long, value_parser = crate::bench::parse_duration, default_value = "30s")]
    ack_deadline: Duration,
}

/// Runs `plexus sub`.
pub async fn subscribe(args: SubArgs) -> anyhow::Result<()> {
    let bus = open(&args.url).await?;
    let options = SubscribeOptions {
        group: args.group.clone(),
        start: match args.from {
            From::New => StartFrom::New,
            From::Earliest => StartFrom::Earliest,
        },
        ack_deadline: args.ack_deadline,
        max_in_flight: 1,
        exclusive: false,
    };
    let mut subscription = bus
        .subscriber
        .subscribe(&args.topic, options)
        .await
        .with_context(|| format!("subscribing to `{}` on {}", args.topic, args.url))?;
    let mut printed = 0u64;
    while args.count.is_none_or(|count| printed < count) {
        let Some(delivery) = subscription.next().await else {
            break;
        };
        let delivery = delivery.with_context(|| format!("reading `{}`", args.topic))?;
        let line = serde_json::to_string(&to_json(delivery.message()))?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}").context("writing to standard output")?;
        out.flush().context("writing to standard output")?;
        drop(out);
        delivery.ack().await?;
        printed += 1;
    }
    Ok(())
}
