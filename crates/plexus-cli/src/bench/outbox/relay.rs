//! Measurement 2: how fast a relay (a [`Forwarder`]) moves what the
//! outbox committed to the destination, against publishing the same
//! messages to the destination directly.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use plexus_bus::forward::{Forwarded, Forwarder};
use plexus_core::Message;
use plexus_core::bus::{BusError, Publisher, SubscribeOptions};
use serde::Serialize;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::BATCH;
use super::counted::Counted;
use super::shop::Shop;

/// The relay's consumer group at the source.
pub const GROUP: &str = "relay";

/// One side of one round.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Throughput {
    /// Messages the destination accepted.
    pub messages: u64,
    /// From the start until the destination accepted the last one, s.
    pub seconds: f64,
    /// Messages per second.
    pub per_sec: f64,
}

impl Throughput {
    fn new(messages: u64, seconds: f64) -> Self {
        Throughput {
            messages,
            seconds,
            per_sec: messages as f64 / seconds.max(1e-9),
        }
    }
}

/// How long moving `messages` may take: a minute, plus 1 ms a message
/// (a relay slower than 1,000 msg/s is broken, not slow).
pub fn limit(messages: u64) -> Duration {
    Duration::from_secs(60) + Duration::from_millis(messages)
}

/// A relay at work, and how to stop it.
pub struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<Forwarded, BusError>>,
    /// What the forwarder returned, once it stopped on its own.
    ended: Option<anyhow::Result<Forwarded>>,
}

impl Running {
    /// Starts a forwarder (batches of [`BATCH`], group [`GROUP`]) from
    /// `from` on the shop's bus to `to` on `destination`.
    pub fn start(shop: &Shop, from: &str, destination: Arc<dyn Publisher>, to: &str) -> Self {
        Self::start_with(Forwarder::new(
            shop.subscriber(),
            from,
            GROUP,
            destination,
            to,
        ))
    }

    /// Starts `forwarder` (given its batch here).
    pub fn start_with(forwarder: Forwarder) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(forwarder.batch(BATCH).run(async move {
            let _ = stopped.await;
        }));
        Running {
            stop,
            task,
            ended: None,
        }
    }

    /// Whether the forwarder stopped on its own (it failed).
    pub fn finished(&self) -> bool {
        self.ended.is_some() || self.task.is_finished()
    }

    /// Waits until `destination` accepted `messages`, or the forwarder
    /// stopped on its own (an error), or `limit` passed.
    pub async fn until(
        &mut self,
        destination: &Counted,
        messages: u64,
        limit: Duration,
    ) -> anyhow::Result<Instant> {
        if self.ended.is_some() {
            anyhow::bail!("the relay had stopped");
        }
        tokio::select! {
            reached = destination.reached(messages, limit) => Ok(reached?.at),
            ended = &mut self.task => {
                self.ended = Some(joined(ended));
                anyhow::bail!(
                    "the relay stopped after {} of {messages} messages reached the destination",
                    destination.messages()
                )
            }
        }
    }

    /// Stops the forwarder after the batch in hand and says what it did.
    pub async fn stop(self) -> anyhow::Result<Forwarded> {
        if let Some(ended) = self.ended {
            return ended;
        }
        let _ = self.stop.send(());
        let ended = tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .context("the relay did not stop within 30 s of being told to")?;
        joined(ended)
    }
}

fn joined(
    ended: Result<Result<Forwarded, BusError>, tokio::task::JoinError>,
) -> anyhow::Result<Forwarded> {
    ended
        .context("the relay panicked")?
        .context("the relay stopped with an error")
}

/// Both outcomes of a measurement with a relay: the measurement's, and
/// the relay's when it was stopped. A relay that failed explains a
/// measurement that did.
pub fn both<T>(
    measured: anyhow::Result<T>,
    stopped: anyhow::Result<Forwarded>,
) -> anyhow::Result<(T, Forwarded)> {
    match (measured, stopped) {
        (Ok(measured), Ok(forwarded)) => Ok((measured, forwarded)),
        (Err(error), Ok(_)) | (Ok(_), Err(error)) => Err(error),
        (Err(error), Err(relay)) => Err(error.context(format!("{relay:#}"))),
    }
}

/// plexus: commits `messages` to `from` through the outbox (not timed),
/// then times a forwarder moving them all to `to` on `destination`,
/// from its start (subscribing included) until the destination accepted
/// the last.
///
/// The relay's group is made before the outbox writes, as a deployed
/// relay's exists: a topic without groups keeps only its latest messages
/// on SQLite (`SqliteConfig::retain_without_groups`), so a relay that
/// joined after more were written would never see the oldest.
pub async fn relay(
    shop: &Shop,
    destination: &Arc<dyn Publisher>,
    from: &str,
    to: &str,
    messages: &[Message],
) -> anyhow::Result<Throughput> {
    let group = shop
        .subscriber()
        .subscribe(from, SubscribeOptions::group(GROUP).from_earliest())
        .await
        .with_context(|| format!("making the relay's group on {from}"))?;
    drop(group);
    shop.seed(from, messages).await?;
    let count = messages.len() as u64;
    let counted = Counted::new(Arc::clone(destination));
    let start = Instant::now();
    let mut running = Running::start(shop, from, counted.clone(), to);
    let reached = running.until(&counted, count, limit(count)).await;
    let stopped = running.stop().await;
    let (reached, forwarded) =
        both(reached, stopped).with_context(|| format!("relaying {count} messages from {from}"))?;
    anyhow::ensure!(
        forwarded.messages >= count,
        "the relay forwarded {} of {count} messages",
        forwarded.messages
    );
    Ok(Throughput::new(count, (reached - start).as_secs_f64()))
}

/// The baseline: the same messages published straight to `to` on
/// `destination` in batches of [`BATCH`], one batch out at a time as the
/// relay's.
pub async fn raw(
    destination: &Arc<dyn Publisher>,
    to: &str,
    messages: &[Message],
) -> anyhow::Result<Throughput> {
    let batches: Vec<Vec<Message>> = messages.chunks(BATCH).map(<[Message]>::to_vec).collect();
    let counted = Counted::new(Arc::clone(destination));
    let start = Instant::now();
    for batch in batches {
        counted
            .publish(to, batch)
            .await
            .with_context(|| format!("publishing to {to} on the destination"))?;
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(Throughput::new(messages.len() as u64, seconds))
}
