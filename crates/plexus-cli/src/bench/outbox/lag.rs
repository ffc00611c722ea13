//! Measurement 3: commit → publish lag under a steady rate. An open-loop
//! writer places orders with their events at `rate` for `duration` while
//! a relay runs; the relay's [`LagMeter`] gives, per event, the time from
//! its `time` (taken inside the transaction, just before the commit) to
//! the destination's acceptance. How much of that the commit itself
//! took (event built → commit returned) is reported beside it, so that
//! the database's share and the relay's can be told apart.
//!
//! Open loop: order `i` is due at `start + i / rate`, whatever became of
//! the ones before. At most [`Source::writers`](super::shop::Source::writers)
//! transactions are in flight; a due order waits for one to finish, and
//! none is begun once `duration` has passed, so the run is bounded and a
//! source that cannot keep up shows it as an achieved rate below the
//! target.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use hdrhistogram::Histogram;
use plexus_bus::forward::Forwarder;
use plexus_bus::lag::LagMeter;
use plexus_core::bus::Publisher;
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
    /// Median commit → publish lag, µs.
    pub p50_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// The longest, µs.
    pub max_us: f64,
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
    let mut running = Running::start_with(
        Forwarder::new(shop.subscriber(), from, GROUP, Arc::clone(destination), to)
            .lag(meter.clone()),
    );
    // 1 µs to 1 min, 3 significant digits.
    let commits = Arc::new(Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
            .context("creating the commits' histogram")?,
    ));
    let measured = measure(shop, from, steady, &meter, &commits, &mut running).await;
    let stopped = running.stop().await;
    let ((committed, not_begun, seconds), _) = both(measured, stopped)?;
    let commits = commits.lock().unwrap_or_else(PoisonError::into_inner);
    let summary = meter.summary();
    anyhow::ensure!(
        summary.count >= committed,
        "the relay's meter recorded {} of {committed} events",
        summary.count
    );
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    Ok(Lag {
        target_rate: f64::from(steady.rate),
        achieved_rate: committed as f64 / seconds.max(1e-9),
        committed,
        not_begun,
        p50_us: us(summary.p50),
        p99_us: us(summary.p99),
        max_us: us(summary.max),
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
    meter: &LagMeter,
    commits: &Arc<Mutex<Histogram<u64>>>,
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
        let topic = from.to_owned();
        tasks.spawn(async move {
            let _permit = permit;
            let commit = shop.place(&shop.next_order(), Some(&topic)).await?;
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
