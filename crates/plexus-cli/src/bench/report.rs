//! Turning paired measurements (plexus and its bare baseline, same rounds)
//! into figures, ratios and floor checks; printing them as a table.
//!
//! Per stack, each figure is the median over rounds. The ratios are paired:
//! each round's plexus figure is compared with the baseline figure of the
//! same round, and the median of those per-round comparisons is reported, so
//! drift in machine load between rounds cancels out.

use serde::Serialize;

use super::load::Sample;

/// One stack's figures in one round.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Figures {
    /// Messages per second (requests per second for unary calls).
    pub throughput: f64,
    /// Calls per second.
    pub calls_per_sec: f64,
    /// Median call latency, µs.
    pub p50_us: f64,
    /// 99th percentile call latency, µs.
    pub p99_us: f64,
    /// Calls completed in the round.
    pub calls: u64,
}

impl From<&Sample> for Figures {
    fn from(sample: &Sample) -> Self {
        Figures {
            throughput: sample.messages_per_sec(),
            calls_per_sec: sample.calls_per_sec(),
            p50_us: sample.latency_us(0.50),
            p99_us: sample.latency_us(0.99),
            calls: sample.calls,
        }
    }
}

/// One stack's figures over all rounds: medians, plus every round.
#[derive(Debug, Clone, Serialize)]
pub struct StackSummary {
    /// Median over rounds of messages (requests) per second.
    pub throughput: f64,
    /// Median over rounds of calls per second.
    pub calls_per_sec: f64,
    /// Median over rounds of the p50 latency, µs.
    pub p50_us: f64,
    /// Median over rounds of the p99 latency, µs.
    pub p99_us: f64,
    /// Every round, in order.
    pub rounds: Vec<Figures>,
}

impl StackSummary {
    fn new(rounds: Vec<Figures>) -> Self {
        StackSummary {
            throughput: median(rounds.iter().map(|r| r.throughput)),
            calls_per_sec: median(rounds.iter().map(|r| r.calls_per_sec)),
            p50_us: median(rounds.iter().map(|r| r.p50_us)),
            p99_us: median(rounds.iter().map(|r| r.p99_us)),
            rounds,
        }
    }
}

/// plexus compared with the baseline, round by round.
#[derive(Debug, Clone, Serialize)]
pub struct Ratios {
    /// Median of per-round plexus/bare throughput.
    pub throughput: f64,
    /// Lowest per-round throughput ratio.
    pub throughput_min: f64,
    /// Highest per-round throughput ratio.
    pub throughput_max: f64,
    /// Median of per-round plexus − bare p50, µs (positive: plexus slower).
    pub p50_diff_us: f64,
    /// Median of per-round plexus − bare p99, µs.
    pub p99_diff_us: f64,
}

/// The bars plexus must clear against its baseline.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Floors {
    /// Lowest acceptable plexus/bare throughput ratio (every scenario).
    pub min_throughput_ratio: f64,
    /// Highest acceptable p50 overhead in µs, checked where the concurrency
    /// is `p50_checked_at_concurrency`.
    pub max_p50_overhead_us: f64,
    /// The concurrency at which the p50 overhead is checked.
    pub p50_checked_at_concurrency: usize,
}

/// Whether one scenario clears the floors.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct FloorCheck {
    /// Throughput ratio at or above the floor.
    pub throughput_ratio_ok: bool,
    /// p50 overhead at or below the floor; `None` where it is not checked.
    pub p50_overhead_ok: Option<bool>,
}

impl FloorCheck {
    /// Whether every checked floor holds.
    pub fn holds(&self) -> bool {
        self.throughput_ratio_ok && self.p50_overhead_ok != Some(false)
    }
}

/// One scenario at one concurrency: both stacks and how they compare.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Scenario name, e.g. `unary`.
    pub scenario: String,
    /// Calls in flight.
    pub concurrency: usize,
    /// Payload bytes per message.
    pub payload_bytes: usize,
    /// Messages per call (1 for unary calls).
    pub messages_per_call: u64,
    /// Unit of `throughput`: `req/s` or `msg/s`.
    pub unit: &'static str,
    /// The plexus stack.
    pub plexus: StackSummary,
    /// The bare baseline.
    pub bare: StackSummary,
    /// plexus against bare.
    pub ratio: Ratios,
    /// The floor checks.
    pub floors: FloorCheck,
}

/// What a row is, before it is measured.
#[derive(Debug, Clone)]
pub struct RowSpec {
    /// Scenario name.
    pub scenario: String,
    /// Calls in flight.
    pub concurrency: usize,
    /// Payload bytes per message.
    pub payload_bytes: usize,
    /// Messages per call.
    pub messages_per_call: u64,
    /// Unit of throughput.
    pub unit: &'static str,
}

impl Row {
    /// Builds a row from paired rounds (`plexus[i]` and `bare[i]` measured in
    /// the same round).
    pub fn new(spec: RowSpec, plexus: Vec<Figures>, bare: Vec<Figures>, floors: &Floors) -> Self {
        assert_eq!(plexus.len(), bare.len(), "rounds must be paired");
        assert!(!plexus.is_empty(), "a row needs at least one round");
        let pairs = || plexus.iter().zip(&bare);
        let throughput: Vec<f64> = pairs().map(|(p, b)| p.throughput / b.throughput).collect();
        let ratio = Ratios {
            throughput: median(throughput.iter().copied()),
            throughput_min: throughput.iter().copied().fold(f64::INFINITY, f64::min),
            throughput_max: throughput.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            p50_diff_us: median(pairs().map(|(p, b)| p.p50_us - b.p50_us)),
            p99_diff_us: median(pairs().map(|(p, b)| p.p99_us - b.p99_us)),
        };
        let checks_p50 = spec.concurrency == floors.p50_checked_at_concurrency;
        let floors = FloorCheck {
            throughput_ratio_ok: ratio.throughput >= floors.min_throughput_ratio,
            p50_overhead_ok: checks_p50.then_some(ratio.p50_diff_us <= floors.max_p50_overhead_us),
        };
        Row {
            scenario: spec.scenario,
            concurrency: spec.concurrency,
            payload_bytes: spec.payload_bytes,
            messages_per_call: spec.messages_per_call,
            unit: spec.unit,
            plexus: StackSummary::new(plexus),
            bare: StackSummary::new(bare),
            ratio,
            floors,
        }
    }
}

/// The median of `values` (the mean of the two middle ones for an even count).
pub fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// Prints the comparison table, then the floors and whether each holds.
pub fn print(rows: &[Row], floors: &Floors, baseline: &str) {
    let headers = [
        "scenario",
        "conc",
        "payload",
        "unit",
        "plexus",
        baseline,
        "ratio",
        "p50 plexus",
        "p50 bare",
        "Δp50",
        "p99 plexus",
        "p99 bare",
        "floors",
    ];
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            vec![
                row.scenario.clone(),
                row.concurrency.to_string(),
                format!("{} B", row.payload_bytes),
                row.unit.to_owned(),
                thousands(row.plexus.throughput),
                thousands(row.bare.throughput),
                format!("{:.3}", row.ratio.throughput),
                format!("{:.1} µs", row.plexus.p50_us),
                format!("{:.1} µs", row.bare.p50_us),
                format!("{:+.1} µs", row.ratio.p50_diff_us),
                format!("{:.1} µs", row.plexus.p99_us),
                format!("{:.1} µs", row.bare.p99_us),
                if row.floors.holds() { "ok" } else { "FAIL" }.to_owned(),
            ]
        })
        .collect();
    print_table(&headers, &body);
    println!();
    println!(
        "floors: throughput ratio >= {:.2} (every scenario); p50 overhead <= {:.0} µs (concurrency {})",
        floors.min_throughput_ratio, floors.max_p50_overhead_us, floors.p50_checked_at_concurrency
    );
    for row in rows {
        let name = format!(
            "{} c={} {} B",
            row.scenario, row.concurrency, row.payload_bytes
        );
        let throughput = verdict(row.floors.throughput_ratio_ok);
        let p50 = match row.floors.p50_overhead_ok {
            Some(ok) => format!("p50 {:+.1} µs {}", row.ratio.p50_diff_us, verdict(ok)),
            None => "p50 not checked".to_owned(),
        };
        println!(
            "  {name:<28} throughput {:.3} (rounds {:.3}..{:.3}) {throughput}; {p50}",
            row.ratio.throughput, row.ratio.throughput_min, row.ratio.throughput_max
        );
    }
    let all = rows.iter().all(|r| r.floors.holds());
    println!("all floors hold: {}", if all { "yes" } else { "NO" });
}

fn verdict(ok: bool) -> &'static str {
    if ok { "holds" } else { "FAILS" }
}

/// Prints a right-aligned table (first column left-aligned).
pub fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let headers: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
    println!("{}", table_line(&headers, &widths));
    println!("{}", table_line(&rule, &widths));
    for row in rows {
        println!("{}", table_line(row, &widths));
    }
}

fn table_line(cells: &[String], widths: &[usize]) -> String {
    let padded: Vec<String> = cells
        .iter()
        .zip(widths)
        .enumerate()
        .map(|(i, (cell, &width))| {
            let pad = " ".repeat(width.saturating_sub(cell.chars().count()));
            if i == 0 {
                format!("{cell}{pad}")
            } else {
                format!("{pad}{cell}")
            }
        })
        .collect();
    padded.join("  ").trim_end().to_owned()
}

/// `1234567.8` as `1,234,568`.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(throughput: f64, p50_us: f64) -> Figures {
        Figures {
            throughput,
            calls_per_sec: throughput,
            p50_us,
            p99_us: p50_us * 2.0,
            calls: 1,
        }
    }

    fn spec(concurrency: usize) -> RowSpec {
        RowSpec {
            scenario: "unary".to_owned(),
            concurrency,
            payload_bytes: 64,
            messages_per_call: 1,
            unit: "req/s",
        }
    }

    const FLOORS: Floors = Floors {
        min_throughput_ratio: 0.95,
        max_p50_overhead_us: 10.0,
        p50_checked_at_concurrency: 1,
    };

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), 2.0);
        assert_eq!(median([4.0, 1.0, 3.0, 2.0].into_iter()), 2.5);
        assert!(median(std::iter::empty()).is_nan());
    }

    #[test]
    fn ratios_are_paired_per_round() {
        // Round 2 is slow for both stacks: paired ratios stay at 0.9.
        let plexus = vec![
            figures(90.0, 12.0),
            figures(45.0, 30.0),
            figures(90.0, 12.0),
        ];
        let bare = vec![
            figures(100.0, 10.0),
            figures(50.0, 25.0),
            figures(100.0, 10.0),
        ];
        let row = Row::new(spec(1), plexus, bare, &FLOORS);
        assert!((row.ratio.throughput - 0.9).abs() < 1e-9);
        assert_eq!(row.ratio.p50_diff_us, 2.0);
        assert!(!row.floors.throughput_ratio_ok);
        assert_eq!(row.floors.p50_overhead_ok, Some(true));
        assert!(!row.floors.holds());
    }

    #[test]
    fn p50_floor_is_checked_only_at_its_concurrency() {
        let row = Row::new(
            spec(64),
            vec![figures(100.0, 99.0)],
            vec![figures(100.0, 10.0)],
            &FLOORS,
        );
        assert_eq!(row.floors.p50_overhead_ok, None);
        assert!(row.floors.holds());
        let row = Row::new(
            spec(1),
            vec![figures(100.0, 21.0)],
            vec![figures(100.0, 10.0)],
            &FLOORS,
        );
        assert_eq!(row.floors.p50_overhead_ok, Some(false));
    }

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1234567.8), "1,234,568");
    }
}
