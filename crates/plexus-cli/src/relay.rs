//! `plexus relay FROM TOPIC TO`: the outbox relay as a process of its own.
//!
//! It joins consumer group `relay` (by default) on `TOPIC` of the bus
//! `FROM`, where a service's outbox writes in its own transactions, and
//! publishes what it takes to the bus `TO`, acknowledging at the source
//! only once the destination accepted (a
//! [`Forwarder`](plexus_bus::forward::Forwarder)). Run several: on an
//! outbox (SQLite, PostgreSQL) the group is exclusive, one relay reads
//! the topic in order and the others stand by, taking over at once (on
//! PostgreSQL) or within the poll interval (on SQLite) when it dies;
//! elsewhere they share the topic, each key with one of them at a time.
//! Killed at any point, it loses nothing: what it had not yet marked done
//! at the source is published again by the next (a duplicate the
//! consumers' inbox drops). When the source or the destination fails for
//! a while (a server restarting, a connection or session lost), it waits
//! and goes on by itself (see the Forwarder).
//!
//! It prints `relaying TOPIC from FROM to TO` once started, a line of
//! figures every `--report-every` (messages relayed, lag from a
//! message's time to the destination's acceptance), and the totals when
//! it stops on SIGINT or SIGTERM.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use plexus_bus::forward::Forwarder;
use plexus_bus::lag::{LagMeter, LagSummary};
use tokio::sync::watch;

use crate::bus::open::open;

/// Arguments of `plexus relay`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The bus the outbox writes to, e.g. `postgres://postgres@127.0.0.1/shop`
    /// or `sqlite://shop.db`.
    from: String,
    /// The topic the outbox writes.
    topic: String,
    /// The bus to publish to, e.g. `nats://127.0.0.1:4222`.
    to: String,
    /// The destination topic (default: the same name).
    #[arg(long)]
    to_topic: Option<String>,
    /// The relay's consumer group at the source: one relay of the group
    /// at a time where the source offers exclusive groups, else they share
    /// the topic.
    #[arg(long, default_value = "relay")]
    group: String,
    /// The most messages one publish to the destination carries.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// How soon the source gives the messages of a relay that stopped
    /// answering (crashed) to another, or to the next run (e.g. `5s`).
    #[arg(long, value_parser = crate::bench::parse_duration, default_value = "30s")]
    ack_deadline: Duration,
    /// How often to print the figures (e.g. `10s`).
    #[arg(long, value_parser = crate::bench::parse_duration, default_value = "10s")]
    report_every: Duration,
}

/// Runs `plexus relay` until SIGINT or SIGTERM, or until the source or
/// the destination fails for good.
pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.report_every >= Duration::from_millis(10),
        "--report-every {:?} is too short; give at least 10ms",
        args.report_every
    );
    let source = open(&args.from).await?;
    let destination = open(&args.to).await?;
    let to_topic = args.to_topic.clone().unwrap_or_else(|| args.topic.clone());
    let meter = LagMeter::new();
    let forwarder = Forwarder::new(
        Arc::clone(&source.subscriber),
        args.topic.clone(),
        args.group.clone(),
        Arc::clone(&destination.publisher),
        to_topic.clone(),
    )
    .batch(args.batch)
    .ack_deadline(args.ack_deadline)
    .lag(meter.clone());
    println!(
        "relaying {} from {} to {} (topic {to_topic})",
        args.topic, args.from, args.to
    );
    let (stop, stopped) = watch::channel(false);
    let mut signals = Signals::new()?;
    let reporter = tokio::spawn(report(meter.clone(), args.report_every, stopped.clone()));
    let mut until_stopped = stopped.clone();
    let relay = tokio::spawn(forwarder.run(async move {
        let _ = until_stopped.wait_for(|stopped| *stopped).await;
    }));
    tokio::pin!(relay);
    let outcome = tokio::select! {
        outcome = &mut relay => outcome,
        () = signals.next() => {
            let _ = stop.send(true);
            relay.await
        }
    };
    let _ = stop.send(true);
    let _ = reporter.await;
    let forwarded = outcome.context("the relay task failed")?.with_context(|| {
        format!(
            "relaying `{}` from {} to {}",
            args.topic, args.from, args.to
        )
    })?;
    println!(
        "stopped: {} relayed, {} batches refused for a while, {} source failures (subscribed again); {}",
        forwarded.messages,
        forwarded.refused_batches,
        forwarded.source_failures,
        figures(&meter.summary())
    );
    source.close().await?;
    destination.close().await?;
    Ok(())
}

/// Prints the figures every `every` until `stopped`.
async fn report(meter: LagMeter, every: Duration, mut stopped: watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(every);
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = ticks.tick() => println!("{}", figures(&meter.summary())),
            _ = stopped.wait_for(|stopped| *stopped) => return,
        }
    }
}

fn figures(lag: &LagSummary) -> String {
    format!(
        "relayed {} messages; lag p50 {:?}, p99 {:?}, max {:?}",
        lag.count, lag.p50, lag.p99, lag.max
    )
}

/// SIGINT and SIGTERM.
struct Signals {
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Self> {
        let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("listening for SIGTERM")?;
        Ok(Signals { terminate })
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = self.terminate.recv() => {}
        }
    }
}
