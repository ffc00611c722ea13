//! The three measurements over rounds, their floors, and the tables of
//! `plexus bench outbox`.
//!
//! As in every bench, a figure is the median over rounds, and a ratio is
//! paired: each round's plexus figure over the baseline's of the same
//! round, the median of those reported (with the lowest and highest), so
//! that drift in the machine's load between rounds cancels out.

use serde::Serialize;

use super::lag::Lag;
use super::relay::Throughput;
use super::shop::Source;
use super::transactions::Transactions;
use crate::bench::report::{median, print_table};

/// The order placement's bound: with the outbox write, the median
/// transaction takes at most this many times the one without.
pub const MAX_TRANSACTION_RATIO: f64 = 1.1;
/// The relay's bound: at least this share of raw publishing's throughput.
pub const MIN_RELAY_RATIO: f64 = 0.8;
/// The commit → publish lag's bound at the 99th percentile, ms (judged on
/// PostgreSQL).
pub const MAX_LAG_P99_MS: f64 = 10.0;

/// A paired ratio over rounds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Ratio {
    /// The median of the per-round ratios.
    pub median: f64,
    /// The lowest per-round ratio.
    pub min: f64,
    /// The highest.
    pub max: f64,
}

impl Ratio {
    /// `plexus[i] / baseline[i]`, round by round.
    fn paired(plexus: impl Iterator<Item = f64>, baseline: impl Iterator<Item = f64>) -> Self {
        let ratios: Vec<f64> = plexus.zip(baseline).map(|(p, b)| p / b).collect();
        Ratio {
            median: median(ratios.iter().copied()),
            min: ratios.iter().copied().fold(f64::INFINITY, f64::min),
            max: ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }
}

/// One side of the order placement, medians over rounds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct TransactionSide {
    pub per_sec: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub mean_us: f64,
}

impl TransactionSide {
    fn new(rounds: &[Transactions]) -> Self {
        TransactionSide {
            per_sec: median(rounds.iter().map(|r| r.per_sec)),
            p50_us: median(rounds.iter().map(|r| r.p50_us)),
            p99_us: median(rounds.iter().map(|r| r.p99_us)),
            mean_us: median(rounds.iter().map(|r| r.mean_us)),
        }
    }
}

/// Measurement 1: the order placement with and without the outbox write.
#[derive(Debug, Clone, Serialize)]
pub struct TransactionsRow {
    /// Sequential transactions per side and round.
    pub transactions: u64,
    pub with_outbox: TransactionSide,
    pub without_outbox: TransactionSide,
    /// with / without, median transaction time (the floor's).
    pub p50_ratio: Ratio,
    /// with / without, 99th percentile.
    pub p99_ratio: Ratio,
    /// with / without, mean.
    pub mean_ratio: Ratio,
    pub with_rounds: Vec<Transactions>,
    pub without_rounds: Vec<Transactions>,
}

impl TransactionsRow {
    pub fn new(transactions: u64, with: Vec<Transactions>, without: Vec<Transactions>) -> Self {
        let ratio =
            |f: fn(&Transactions) -> f64| Ratio::paired(with.iter().map(f), without.iter().map(f));
        TransactionsRow {
            transactions,
            with_outbox: TransactionSide::new(&with),
            without_outbox: TransactionSide::new(&without),
            p50_ratio: ratio(|t| t.p50_us),
            p99_ratio: ratio(|t| t.p99_us),
            mean_ratio: ratio(|t| t.mean_us),
            with_rounds: with,
            without_rounds: without,
        }
    }
}

/// Measurement 2: the relay against raw publishing.
#[derive(Debug, Clone, Serialize)]
pub struct RelayRow {
    /// Messages per side and round.
    pub messages: u64,
    /// Messages per publish.
    pub batch: usize,
    /// The relay, msg/s (median over rounds).
    pub relay_per_sec: f64,
    /// Raw publishing to the destination, msg/s.
    pub raw_per_sec: f64,
    /// relay / raw.
    pub ratio: Ratio,
    pub relay_rounds: Vec<Throughput>,
    pub raw_rounds: Vec<Throughput>,
}

impl RelayRow {
    pub fn new(messages: u64, batch: usize, relay: Vec<Throughput>, raw: Vec<Throughput>) -> Self {
        RelayRow {
            messages,
            batch,
            relay_per_sec: median(relay.iter().map(|r| r.per_sec)),
            raw_per_sec: median(raw.iter().map(|r| r.per_sec)),
            ratio: Ratio::paired(
                relay.iter().map(|r| r.per_sec),
                raw.iter().map(|r| r.per_sec),
            ),
            relay_rounds: relay,
            raw_rounds: raw,
        }
    }
}

/// Measurement 3: the commit → publish lag at a steady rate.
#[derive(Debug, Clone, Serialize)]
pub struct LagRow {
    pub target_rate: f64,
    /// Median over rounds.
    pub achieved_rate: f64,
    /// Median over rounds of each round's p50 of commit returned →
    /// accepted at the destination, µs.
    pub p50_us: f64,
    /// Median over rounds of each round's p99, µs (the floor's).
    pub p99_us: f64,
    /// The longest of every round, µs.
    pub max_us: f64,
    /// Median over rounds of the p50 of event time → accepted (the
    /// relay's lag meter, the commit included), µs.
    pub since_time_p50_us: f64,
    /// Median over rounds of its p99, µs.
    pub since_time_p99_us: f64,
    /// Median over rounds of the p50 of event time → commit returned, µs.
    pub commit_p50_us: f64,
    /// Median over rounds of its p99, µs.
    pub commit_p99_us: f64,
    pub rounds: Vec<Lag>,
}

impl LagRow {
    pub fn new(rounds: Vec<Lag>) -> Self {
        LagRow {
            target_rate: rounds.first().map_or(0.0, |r| r.target_rate),
            achieved_rate: median(rounds.iter().map(|r| r.achieved_rate)),
            p50_us: median(rounds.iter().map(|r| r.p50_us)),
            p99_us: median(rounds.iter().map(|r| r.p99_us)),
            max_us: rounds.iter().map(|r| r.max_us).fold(0.0, f64::max),
            since_time_p50_us: median(rounds.iter().map(|r| r.since_time_p50_us)),
            since_time_p99_us: median(rounds.iter().map(|r| r.since_time_p99_us)),
            commit_p50_us: median(rounds.iter().map(|r| r.commit_p50_us)),
            commit_p99_us: median(rounds.iter().map(|r| r.commit_p99_us)),
            rounds,
        }
    }
}

/// One floor and whether it holds.
#[derive(Debug, Clone, Serialize)]
pub struct Floor {
    pub name: String,
    pub value: f64,
    pub bound: f64,
    /// The value must not exceed the bound (else: reach it).
    pub at_most: bool,
    /// `None` where the floor is reported but not judged (the lag on
    /// SQLite).
    pub holds: Option<bool>,
}

impl Floor {
    fn new(name: &str, value: f64, bound: f64, at_most: bool, judged: bool) -> Self {
        let holds = if at_most {
            value <= bound
        } else {
            value >= bound
        };
        Floor {
            name: name.to_owned(),
            value,
            bound,
            at_most,
            holds: judged.then_some(holds),
        }
    }
}

/// The floors of a run on `source`.
pub fn floors(
    source: Source,
    transactions: &TransactionsRow,
    relay: &RelayRow,
    lag: &LagRow,
) -> Vec<Floor> {
    vec![
        Floor::new(
            "order placement, median time with / without the outbox write",
            transactions.p50_ratio.median,
            MAX_TRANSACTION_RATIO,
            true,
            true,
        ),
        Floor::new(
            "relay / raw publish to the destination, msg/s",
            relay.ratio.median,
            MIN_RELAY_RATIO,
            false,
            true,
        ),
        Floor::new(
            "commit → publish lag p99, ms",
            lag.p99_us / 1000.0,
            MAX_LAG_P99_MS,
            true,
            source == Source::Postgres,
        ),
    ]
}

/// Prints the three tables, then the floors.
pub fn print(
    transactions: &TransactionsRow,
    relay: &RelayRow,
    lag: &LagRow,
    floors: &[Floor],
    rounds: u32,
) {
    let side = |name: &str, s: &TransactionSide| {
        vec![
            name.to_owned(),
            format!("{:.0}", s.p50_us),
            format!("{:.0}", s.p99_us),
            format!("{:.0}", s.mean_us),
            format!("{:.0}", s.per_sec),
        ]
    };
    println!();
    println!(
        "1. order placement: {} sequential transactions per side and round, sides alternating every {} (medians of {rounds} rounds)",
        transactions.transactions,
        super::transactions::BLOCK
    );
    print_table(
        &["", "p50 µs", "p99 µs", "mean µs", "tx/s"],
        &[
            side("with outbox", &transactions.with_outbox),
            side("without", &transactions.without_outbox),
            vec![
                "with / without".to_owned(),
                ratio(&transactions.p50_ratio),
                ratio(&transactions.p99_ratio),
                ratio(&transactions.mean_ratio),
                String::new(),
            ],
        ],
    );
    println!();
    println!(
        "2. relay: {} committed events moved in batches of {} (medians of {rounds} rounds)",
        relay.messages, relay.batch
    );
    print_table(
        &["", "msg/s"],
        &[
            vec!["relay".to_owned(), format!("{:.0}", relay.relay_per_sec)],
            vec![
                "raw publish".to_owned(),
                format!("{:.0}", relay.raw_per_sec),
            ],
            vec!["relay / raw".to_owned(), ratio(&relay.ratio)],
        ],
    );
    println!();
    println!(
        "3. commit → publish lag at {:.0} events/s (medians of {rounds} rounds; max of all)",
        lag.target_rate
    );
    print_table(
        &[
            "p50 ms",
            "p99 ms",
            "max ms",
            "achieved/s",
            "from event time p50 ms",
            "p99 ms",
            "of which commit p50 ms",
            "commit p99 ms",
        ],
        &[vec![
            format!("{:.2}", lag.p50_us / 1000.0),
            format!("{:.2}", lag.p99_us / 1000.0),
            format!("{:.2}", lag.max_us / 1000.0),
            format!("{:.0}", lag.achieved_rate),
            format!("{:.2}", lag.since_time_p50_us / 1000.0),
            format!("{:.2}", lag.since_time_p99_us / 1000.0),
            format!("{:.2}", lag.commit_p50_us / 1000.0),
            format!("{:.2}", lag.commit_p99_us / 1000.0),
        ]],
    );
    println!();
    for f in floors {
        let verdict = match f.holds {
            Some(true) => "holds",
            Some(false) => "FAILS",
            None => "not judged on this source",
        };
        println!(
            "floor: {} = {:.3} ({} {}): {verdict}",
            f.name,
            f.value,
            if f.at_most { "≤" } else { "≥" },
            f.bound
        );
    }
    let all = floors.iter().all(|f| f.holds != Some(false));
    println!("all floors hold: {}", if all { "yes" } else { "NO" });
}

/// `1.034 (1.010..1.071)`.
fn ratio(r: &Ratio) -> String {
    if r.min == r.max {
        format!("{:.3}", r.median)
    } else {
        format!("{:.3} ({:.3}..{:.3})", r.median, r.min, r.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(p50: f64) -> Transactions {
        Transactions {
            transactions: 10,
            per_sec: 1e6 / p50,
            p50_us: p50,
            p99_us: p50 * 2.0,
            mean_us: p50,
        }
    }

    #[test]
    fn ratios_are_paired_per_round() {
        // Round 2 is slow for both sides: the paired ratios stay at 1.05.
        let row = TransactionsRow::new(
            10,
            vec![tx(105.0), tx(210.0), tx(105.0)],
            vec![tx(100.0), tx(200.0), tx(100.0)],
        );
        assert!((row.p50_ratio.median - 1.05).abs() < 1e-9);
        assert!((row.p50_ratio.min - 1.05).abs() < 1e-9);
        assert_eq!(row.with_outbox.p50_us, 105.0);
    }

    #[test]
    fn the_lag_floor_is_judged_on_postgres_only() {
        let transactions = TransactionsRow::new(1, vec![tx(100.0)], vec![tx(100.0)]);
        let throughput = |per_sec| Throughput {
            messages: 1,
            seconds: 1.0 / per_sec,
            per_sec,
        };
        let relay = RelayRow::new(1, 100, vec![throughput(70.0)], vec![throughput(100.0)]);
        let lag = LagRow::new(vec![Lag {
            target_rate: 1000.0,
            achieved_rate: 1000.0,
            committed: 10,
            not_begun: 0,
            p50_us: 1000.0,
            p99_us: 20_000.0,
            max_us: 30_000.0,
            since_time_p50_us: 1500.0,
            since_time_p99_us: 22_000.0,
            commit_p50_us: 500.0,
            commit_p99_us: 2_000.0,
        }]);
        let on = |source| {
            floors(source, &transactions, &relay, &lag)
                .iter()
                .map(|f| f.holds)
                .collect::<Vec<_>>()
        };
        assert_eq!(on(Source::Postgres), [Some(true), Some(false), Some(false)]);
        assert_eq!(on(Source::Sqlite), [Some(true), Some(false), None]);
    }
}
