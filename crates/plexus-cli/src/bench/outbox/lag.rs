//! Measurement 3: commit → publish lag under a steady rate. An open-loop
//! writer places orders with their events at `rate` for `duration` while
//! a relay runs. Per event: the moment its transaction's commit returned
//! (to the writer) and the moment the destination accepted it (a
//! [`Stamped`] publisher in front of the destination, matching by the
//! event's subject, its order id) give the commit → publish lag, the
//! floor's figure. Beside it, the relay's [`LagMeter`] gives the time
//! from the event's `time` (taken inside the transaction, just before the
//! commit) to the acceptance, and the commit's own duration is reported,
//! so that the database's share and the relay's can be told apart.
//!
//! Open loop: order `i` is due at `start + i / rate`, whatever became of
//! the ones before. At most [`Source::writers`](super::shop::Source::writers)
//! transactions are in flight; a due order waits for one to finish, and
//! none is begun once `duration` has passed, so the run is bounded and a
//! source that cannot keep up shows it as an achieved rate below the
//! target.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use hdrhistogram::Histogram;
use plexus_bus::forward::Forwarder;
use plexus_bus::lag::LagMeter;
use plexus_core::Message;
use plexus_core::bus::{BoxFuture, BusError, Features, Publisher};
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::relay::{GROUP, Running, both, limit};
use super::shop::Shop;

/// Events placed and relayed before measuring (their lag is forgotten):
/// the relay's subscription and first claims are not what a running
/// service pays.
const WARMUP: u64 = 10;

/// How often the meter's count is looked at while waiting for the relay.
const POLL: Duration = Duration::from_millis(5);

/// One round's figures.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Lag {
    /// Events committed per second, asked for.
    pub target_rate: f64,
    /// Events committed per second, from the start until the last commit
    /// returned.
    pub achieved_rate: f64,
    /// Events committed (and relayed).
    pub committed: u64,
    /// Events due that were not begun within the duration (every writer
    /// busy).
    pub not_begun: u64,
    /// Median commit → publish lag (the commit returned → the destination
    /// accepted), µs.
    pub p50_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// The longest, µs.
    pub max_us: f64,
    /// Median time from the event's `time` (before the commit) to the
    /// destination's acceptance, µs (the relay's lag meter).
    pub since_time_p50_us: f64,
    /// 99th percentile of the same, µs.
    pub since_time_p99_us: f64,
    /// Median time from an event's `time` until its transaction's commit
    /// returned, µs: the part of the lag that is the database's.
    pub commit_p50_us: f64,
    /// 99th percentile of the same, µs.
    pub commit_p99_us: f64,
}

/// What the steady writer does.
#[derive(Debug, Clone, Copy)]
pub struct Steady {
    /// Events per second.
    pub rate: u32,
    /// How long to write.
    pub duration: Duration,
    /// Transactions in flight at most.
    pub writers: u32,
}

/// Runs a relay from `from` on the shop's bus to `to` on `destination`
/// while placing orders at the steady rate.
pub async fn run(
    shop: &Arc<Shop>,
    destination: &Arc<dyn Publisher>,
    from: &str,
    to: &str,
    steady: Steady,
) -> anyhow::Result<Lag> {
    let meter = LagMeter::new();
    let stamped = Arc::new(Stamped::new(Arc::clone(destination)));
    let mut running = Running::start_with(
        Forwarder::new(shop.subscriber(), from, GROUP, stamped.clone(), to).lag(meter.clone()),
    );
    let committed_at = Arc::new(Mutex::new(HashMap::new()));
    // 1 µs to 1 min, 3 significant digits.
    let commits = Arc::new(Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
            .context("creating the commits' histogram")?,
    ));
    let measured = measure(
        shop,
        from,
        steady,
        (&meter, &commits, &committed_at),
        &mut running,
    )
    .await;
    let stopped = running.stop().await;
    let ((committed, not_begun, seconds), _) = both(measured, stopped)?;
    let commits = commits.lock().unwrap_or_else(PoisonError::into_inner);
    let summary = meter.summary();
    anyhow::ensure!(
        summary.count >= committed,
        "the relay's meter recorded {} of {committed} events",
        summary.count
    );
    let lags = stamped.lags(&committed_at.lock().unwrap_or_else(PoisonError::into_inner))?;
    anyhow::ensure!(
        lags.len() >= committed,
        "the destination accepted {} of the {committed} events measured",
        lags.len()
    );
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let at = |q: f64| lags.value_at_quantile(q) as f64;
    Ok(Lag {
        target_rate: f64::from(steady.rate),
        achieved_rate: committed as f64 / seconds.max(1e-9),
        committed,
        not_begun,
        p50_us: at(0.50),
        p99_us: at(0.99),
        max_us: lags.max() as f64,
        since_time_p50_us: us(summary.p50),
        since_time_p99_us: us(summary.p99),
        commit_p50_us: commits.value_at_quantile(0.50) as f64,
        commit_p99_us: commits.value_at_quantile(0.99) as f64,
    })
}

/// The warm-up, then the steady writer; waits until the relay recorded
/// every event. Returns the events committed, the ones not begun and the
/// writer's seconds.
async fn measure(
    shop: &Arc<Shop>,
    from: &str,
    steady: Steady,
    (meter, commits, committed_at): (&LagMeter, &Commits, &CommittedAt),
    running: &mut Running,
) -> anyhow::Result<(u64, u64, f64)> {
    for _ in 0..WARMUP {
        shop.place(&shop.next_order(), Some(from)).await?;
    }
    recorded(meter, WARMUP, running)
        .await
        .context("waiting for the relay to forward the warm-up events")?;
    meter.reset();
    let period = 1.0 / f64::from(steady.rate);
    let due = (steady.duration.as_secs_f64() * f64::from(steady.rate)).round() as u64;
    let writers = Arc::new(Semaphore::new(steady.writers as usize));
    let mut tasks = JoinSet::new();
    let start = Instant::now();
    let end = start + steady.duration;
    let mut begun = 0;
    for i in 0..due.max(1) {
        tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 * period)).await;
        let permit = Arc::clone(&writers)
            .acquire_owned()
            .await
            .context("the writers' semaphore closed")?;
        if Instant::now() >= end && i > 0 {
            break;
        }
        while let Some(done) = tasks.try_join_next() {
            done.context("a writer panicked")??;
        }
        let (shop, commits) = (Arc::clone(shop), Arc::clone(commits));
        let committed_at = Arc::clone(committed_at);
        let topic = from.to_owned();
        tasks.spawn(async move {
            let _permit = permit;
            let order = shop.next_order();
            let commit = shop.place(&order, Some(&topic)).await?;
            committed_at
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(order.id().to_owned(), Instant::now());
            if let Some(commit) = commit {
                let micros = u64::try_from(commit.as_micros()).unwrap_or(u64::MAX);
                commits
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .saturating_record(micros.max(1));
            }
            Ok::<_, anyhow::Error>(())
        });
        begun += 1;
    }
    while let Some(done) = tasks.join_next().await {
        done.context("a writer panicked")??;
    }
    let seconds = start.elapsed().as_secs_f64();
    recorded(meter, begun, running)
        .await
        .context("waiting for the relay to forward the measured events")?;
    Ok((begun, due.max(1) - begun, seconds))
}

/// The commits' durations (event built → commit returned), µs.
type Commits = Arc<Mutex<Histogram<u64>>>;
/// When each measured order's commit returned, by order id.
type CommittedAt = Arc<Mutex<HashMap<String, Instant>>>;

/// A [`Publisher`] in front of the destination noting when it accepted
/// each message, by the message's subject (the order id). Holds one entry
/// per message of the run (bounded by the bench's `--rate` × `--duration`
/// limit).
struct Stamped {
    inner: Arc<dyn Publisher>,
    accepted: Mutex<HashMap<String, Instant>>,
}

impl Stamped {
    fn new(inner: Arc<dyn Publisher>) -> Self {
        Stamped {
            inner,
            accepted: Mutex::new(HashMap::new()),
        }
    }

    /// The commit → acceptance lags of the events in `committed`, µs (an
    /// acceptance first seen before the commit returned counts as 1 µs).
    fn lags(&self, committed: &HashMap<String, Instant>) -> anyhow::Result<Histogram<u64>> {
        let mut lags = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
            .context("creating the lags' histogram")?;
        let accepted = self.accepted.lock().unwrap_or_else(PoisonError::into_inner);
        for (id, at) in committed {
            if let Some(accepted) = accepted.get(id) {
                let micros = accepted.saturating_duration_since(*at).as_micros();
                lags.saturating_record(u64::try_from(micros).unwrap_or(u64::MAX).max(1));
            }
        }
        Ok(lags)
    }
}

impl Publisher for Stamped {
    fn publish<'a>(
        &'a self,
        topic: &'a str,
        batch: Vec<Message>,
    ) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(async move {
            let subjects: Vec<String> = batch
                .iter()
                .filter_map(|m| m.subject().map(str::to_owned))
                .collect();
            self.inner.publish(topic, batch).await?;
            let now = Instant::now();
            let mut accepted = self.accepted.lock().unwrap_or_else(PoisonError::into_inner);
            for subject in subjects {
                // The first acceptance counts (a redelivery is later).
                accepted.entry(subject).or_insert(now);
            }
            Ok(())
        })
    }

    fn close(&self) -> BoxFuture<'_, Result<(), BusError>> {
        // The destination outlives the measurement.
        Box::pin(async { Ok(()) })
    }

    fn features(&self) -> Features {
        self.inner.features()
    }
}

/// Waits until `meter` recorded `count` events (bounded as a relay of
/// that many), failing early if the relay stops.
async fn recorded(meter: &LagMeter, count: u64, running: &mut Running) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit(count);
    loop {
        let seen = meter.summary().count;
        if seen >= count {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the relay forwarded {seen} of {count} events within {:?}; check that the destination is up",
            limit(count)
        );
        anyhow::ensure!(
            !running.finished(),
            "the relay stopped after {seen} of {count} events"
        );
        tokio::time::sleep(POLL).await;
    }
}
