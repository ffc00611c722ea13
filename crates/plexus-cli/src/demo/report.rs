//! The demo's report: one row per pattern, with counts, latency percentiles
//! and the invariant checked.

use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Latencies of one pattern's calls, in microseconds: recorded here, or
/// the percentiles another histogram gave.
pub(super) enum Latency {
    Recorded(Histogram<u64>),
    Percentiles { p50: Duration, p99: Duration },
}

impl Latency {
    pub(super) fn new() -> Self {
        // 1 µs to 10 min, 3 significant digits: a fixed, small footprint.
        Latency::Recorded(
            Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds"),
        )
    }

    pub(super) fn record(&mut self, elapsed: Duration) {
        if let Latency::Recorded(histogram) = self {
            let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
            histogram.saturating_record(micros.max(1));
        }
    }

    fn quantile(&self, q: f64) -> Option<Duration> {
        match self {
            Latency::Recorded(histogram) => (!histogram.is_empty())
                .then(|| Duration::from_micros(histogram.value_at_quantile(q))),
            Latency::Percentiles { p50, p99 } => Some(if q <= 0.5 { *p50 } else { *p99 }),
        }
    }
}

/// What was checked for one pattern, and whether it held.
pub(super) struct Invariant {
    pub(super) claim: String,
    /// `None` when it holds; otherwise what was seen instead.
    pub(super) violation: Option<String>,
}

impl Invariant {
    /// `claim` holds when `violations` is empty; otherwise the first few
    /// violations explain why not.
    pub(super) fn check(claim: impl Into<String>, violations: &[String]) -> Self {
        let violation = (!violations.is_empty()).then(|| {
            let shown: Vec<&str> = violations.iter().take(3).map(String::as_str).collect();
            format!(
                "{} violation(s), first: {}",
                violations.len(),
                shown.join("; ")
            )
        });
        Invariant {
            claim: claim.into(),
            violation,
        }
    }
}

/// One row of the report.
pub(super) struct Row {
    pub(super) pattern: &'static str,
    pub(super) calls: u64,
    pub(super) ok: u64,
    pub(super) latency: Latency,
    pub(super) invariant: Invariant,
}

impl Row {
    pub(super) fn holds(&self) -> bool {
        self.invariant.violation.is_none()
    }
}

/// The rows as an aligned text table.
pub(super) fn table(rows: &[Row]) -> String {
    let header = ["pattern", "calls", "ok", "p50", "p99", "invariant"];
    let mut cells: Vec<[String; 6]> = vec![header.map(str::to_owned)];
    for row in rows {
        let mark = if row.holds() { "✓" } else { "✗" };
        cells.push([
            row.pattern.to_owned(),
            row.calls.to_string(),
            row.ok.to_string(),
            millis(row.latency.quantile(0.50)),
            millis(row.latency.quantile(0.99)),
            format!("{mark} {}", row.invariant.claim),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            cells
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (i, row) in cells.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            let pad = widths[c] - cell.chars().count();
            let numeric = (1..=4).contains(&c);
            let (left, right) = if numeric { (pad, 0) } else { (0, pad) };
            let sep = if c + 1 == row.len() { "" } else { "  " };
            let _ = write!(out, "{}{cell}{}{sep}", " ".repeat(left), " ".repeat(right));
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
        if i == 0 {
            let rule: usize = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
            out.push_str(&"-".repeat(rule));
            out.push('\n');
        }
    }
    for row in rows.iter().filter(|r| !r.holds()) {
        let _ = writeln!(
            out,
            "✗ {}: {}: {}",
            row.pattern,
            row.invariant.claim,
            row.invariant.violation.as_deref().unwrap_or_default()
        );
    }
    out
}

fn millis(d: Option<Duration>) -> String {
    match d {
        Some(d) => format!("{:.2} ms", d.as_secs_f64() * 1e3),
        None => "-".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_shows_every_row_and_explains_failures() {
        let mut latency = Latency::new();
        latency.record(Duration::from_micros(1500));
        let rows = [
            Row {
                pattern: "gRPC unary",
                calls: 2,
                ok: 2,
                latency,
                invariant: Invariant::check("every order readable back", &[]),
            },
            Row {
                pattern: "cancellation",
                calls: 1,
                ok: 0,
                latency: Latency::new(),
                invariant: Invariant::check(
                    "server saw the cancel",
                    &["not within 2 s".to_owned()],
                ),
            },
        ];
        let text = table(&rows);
        assert!(text.contains("✓ every order readable back"), "{text}");
        assert!(text.contains("1.50 ms"), "{text}");
        assert!(
            text.contains(
                "✗ cancellation: server saw the cancel: 1 violation(s), first: not within 2 s"
            ),
            "{text}"
        );
    }
}
