//! A closed-loop load generator: `concurrency` workers, each issuing one call
//! after the other for a fixed time, every call's latency recorded in an
//! hdrhistogram.
//!
//! Closed loop means a worker starts its next call only when the previous one
//! has finished, so `concurrency` is also the number of calls in flight.

use std::future::Future;
use std::time::Duration;

use anyhow::Context as _;
use hdrhistogram::Histogram;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Highest latency a histogram records, in nanoseconds (60 s); slower calls
/// are counted at this value.
const MAX_LATENCY_NS: u64 = 60_000_000_000;

/// Significant figures kept by the latency histograms.
const SIGNIFICANT_FIGURES: u8 = 3;

/// How long the calls still in flight when a measurement's time is up may
/// take to finish before the measurement fails.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// One unit of work a worker repeats: a call (unary, or a whole stream).
pub trait Caller: Send + 'static {
    /// Makes one call and returns how many messages it moved (1 for a unary
    /// call, the number of replies for a server stream).
    fn call(&mut self) -> impl Future<Output = anyhow::Result<u64>> + Send;
}

/// What one measurement recorded.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Calls completed.
    pub calls: u64,
    /// Messages those calls moved.
    pub messages: u64,
    /// From the start signal to the last call's completion.
    pub elapsed: Duration,
    /// Latency of every call, in nanoseconds.
    pub latency_ns: Histogram<u64>,
}

impl Sample {
    /// Messages per second.
    pub fn messages_per_sec(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64()
    }

    /// Calls per second.
    pub fn calls_per_sec(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }

    /// The latency at `quantile` (0..=1), in microseconds.
    pub fn latency_us(&self, quantile: f64) -> f64 {
        self.latency_ns.value_at_quantile(quantile) as f64 / 1_000.0
    }
}

/// A new, empty latency histogram (nanoseconds, 1 ns to 60 s).
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, SIGNIFICANT_FIGURES)
        .expect("the latency histogram bounds are valid")
}

/// Runs one worker per caller (so `callers.len()` calls are in flight) for
/// `duration`, all starting together. A worker starts no call after
/// `duration` has passed; the calls in flight then finish and are counted.
/// The first failing call fails the measurement, and so do calls still in
/// flight [`DRAIN_LIMIT`] after the time is up.
pub async fn run<C: Caller>(callers: Vec<C>, duration: Duration) -> anyhow::Result<Sample> {
    tokio::time::timeout(duration + DRAIN_LIMIT, measure(callers, duration))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "calls were still in flight {DRAIN_LIMIT:?} after the {duration:?} measurement ended; \
                 the server under test is stuck or overloaded"
            )
        })?
}

async fn measure<C: Caller>(callers: Vec<C>, duration: Duration) -> anyhow::Result<Sample> {
    anyhow::ensure!(
        !callers.is_empty(),
        "a measurement needs at least one worker"
    );
    let (start_tx, start_rx) = watch::channel(None::<Instant>);
    let mut workers = JoinSet::new();
    for (index, caller) in callers.into_iter().enumerate() {
        workers.spawn(worker(index, caller, start_rx.clone(), duration));
    }
    drop(start_rx);
    let started = Instant::now();
    start_tx.send_replace(Some(started));

    let mut latency_ns = latency_histogram();
    let mut calls = 0;
    let mut messages = 0;
    let mut finished = started;
    while let Some(joined) = workers.join_next().await {
        let done = joined.context("a load worker panicked")??;
        latency_ns
            .add(&done.latency_ns)
            .expect("histograms with the same bounds always merge");
        calls += done.calls;
        messages += done.messages;
        finished = finished.max(done.finished);
    }
    Ok(Sample {
        calls,
        messages,
        elapsed: finished
            .duration_since(started)
            .max(Duration::from_nanos(1)),
        latency_ns,
    })
}

/// What one worker recorded.
struct WorkerResult {
    calls: u64,
    messages: u64,
    finished: Instant,
    latency_ns: Histogram<u64>,
}

async fn worker<C: Caller>(
    index: usize,
    mut caller: C,
    mut start: watch::Receiver<Option<Instant>>,
    duration: Duration,
) -> anyhow::Result<WorkerResult> {
    let started = *start
        .wait_for(Option::is_some)
        .await
        .context("the measurement ended before it started")?;
    let started = started.expect("waited for the start instant");
    let end = started + duration;
    let mut result = WorkerResult {
        calls: 0,
        messages: 0,
        finished: started,
        latency_ns: latency_histogram(),
    };
    loop {
        let before = Instant::now();
        if before >= end {
            break;
        }
        let moved = caller
            .call()
            .await
            .with_context(|| format!("worker {index}: call {} failed", result.calls + 1))?;
        let after = Instant::now();
        let nanos = u64::try_from(after.duration_since(before).as_nanos()).unwrap_or(u64::MAX);
        result.latency_ns.saturating_record(nanos.max(1));
        result.calls += 1;
        result.messages += moved;
        result.finished = after;
    }
    Ok(result)
}
