//! Measurement 1: the shop's order placement, sequential transactions,
//! with the `OrderPlaced` event written through the outbox in each or
//! without it.
//!
//! Within a round the two sides alternate in blocks of [`BLOCK`]
//! transactions (which goes first alternates between rounds): a commit
//! waits on the disk, whose flush time drifts by several times within
//! seconds on a shared machine, and blocks a fraction of a second long
//! let both sides meet the same disk; whole sides one after the other
//! measured mostly that drift. Blocks rather than single transactions,
//! so that what one side's transaction leaves for the database to do
//! afterwards falls mostly on its own side.

use anyhow::Context as _;
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::time::{Duration, Instant};

use super::shop::Shop;

/// Transactions of one side in a row before the other side's turn.
pub const BLOCK: u64 = 50;

/// One side of one round.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Transactions {
    /// Transactions committed.
    pub transactions: u64,
    /// Transactions per second of the side's own time (one at a time).
    pub per_sec: f64,
    /// Median time of one transaction, begin to commit returned, µs.
    pub p50_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// Mean, µs.
    pub mean_us: f64,
}

/// The times of one side's transactions.
struct Side<'a> {
    /// The outbox topic its events go to; none for the side without.
    event_topic: Option<&'a str>,
    times: Histogram<u64>,
    busy: Duration,
    count: u64,
}

impl<'a> Side<'a> {
    fn new(event_topic: Option<&'a str>) -> anyhow::Result<Self> {
        Ok(Side {
            event_topic,
            // 1 µs to 1 min, 3 significant digits.
            times: Histogram::new_with_bounds(1, 60_000_000, 3)
                .context("creating the transactions' histogram")?,
            busy: Duration::ZERO,
            count: 0,
        })
    }

    /// Places `count` orders one after another.
    async fn place(&mut self, shop: &Shop, count: u64) -> anyhow::Result<()> {
        for _ in 0..count {
            let order = shop.next_order();
            let start = Instant::now();
            shop.place(&order, self.event_topic).await?;
            let took = start.elapsed();
            let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
            self.times.saturating_record(micros.max(1));
            self.busy += took;
            self.count += 1;
        }
        Ok(())
    }

    fn figures(&self) -> Transactions {
        Transactions {
            transactions: self.count,
            per_sec: self.count as f64 / self.busy.as_secs_f64().max(1e-9),
            p50_us: self.times.value_at_quantile(0.50) as f64,
            p99_us: self.times.value_at_quantile(0.99) as f64,
            mean_us: self.times.mean(),
        }
    }
}

/// Places `count` orders with their events written to `event_topic`
/// through the outbox and `count` without, in alternating blocks, the
/// side with the outbox first when `with_first`. Returns (with, without).
pub async fn paired(
    shop: &Shop,
    count: u64,
    event_topic: &str,
    with_first: bool,
) -> anyhow::Result<(Transactions, Transactions)> {
    let mut with = Side::new(Some(event_topic))?;
    let mut without = Side::new(None)?;
    let mut done = 0;
    while done < count {
        let block = BLOCK.min(count - done);
        if with_first {
            with.place(shop, block).await?;
            without.place(shop, block).await?;
        } else {
            without.place(shop, block).await?;
            with.place(shop, block).await?;
        }
        done += block;
    }
    Ok((with.figures(), without.figures()))
}
