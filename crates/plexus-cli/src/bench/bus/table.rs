//! Rows, the curve, the floors and the table of `plexus bench bus`.

use serde::Serialize;

use super::Backend;
use super::measure::Measured;
use crate::bench::report::{median, print_table};

/// Median figures over rounds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Summary {
    pub throughput: f64,
    pub publish_throughput: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    /// The warm-up before the measurement (see [`super::measure::WARMUP_BATCHES`]), ms.
    pub warmup_ms: f64,
    /// The bench process's CPU time per message while measuring, µs
    /// (none where it was not measured).
    pub cpu_us_per_msg: Option<f64>,
}

impl Summary {
    fn new(rounds: &[Measured]) -> Self {
        Summary {
            throughput: median(rounds.iter().map(|m| m.throughput)),
            publish_throughput: median(rounds.iter().map(|m| m.publish_throughput)),
            p50_us: median(rounds.iter().map(|m| m.p50_us)),
            p99_us: median(rounds.iter().map(|m| m.p99_us)),
            warmup_ms: median(rounds.iter().map(|m| m.warmup_ms)),
            cpu_us_per_msg: rounds
                .iter()
                .map(|m| m.cpu_us_per_msg)
                .collect::<Option<Vec<f64>>>()
                .map(|cpu| median(cpu.into_iter())),
        }
    }
}

/// One payload size and publisher count.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub payload_bytes: usize,
    pub publishers: usize,
    pub plexus: Summary,
    /// The floors' baseline: for a broker, its raw client sending the
    /// same CloudEvents on the wire as plexus.
    pub baseline: Summary,
    /// plexus publish+consume throughput / baseline throughput.
    pub ratio: f64,
    /// For a broker, its raw client sending bare payloads.
    pub bare: Option<Summary>,
    /// plexus publish+consume throughput / bare throughput.
    pub bare_ratio: Option<f64>,
    pub plexus_rounds: Vec<Measured>,
    pub baseline_rounds: Vec<Measured>,
    pub bare_rounds: Vec<Measured>,
}

impl Row {
    pub fn new(
        payload: usize,
        publishers: usize,
        plexus: &[Measured],
        raw: &[Measured],
        bare: Option<&Vec<Measured>>,
    ) -> Self {
        let (p, b) = (Summary::new(plexus), Summary::new(raw));
        let bare_summary = bare.map(|rounds| Summary::new(rounds));
        Row {
            payload_bytes: payload,
            publishers,
            ratio: p.throughput / b.throughput,
            bare_ratio: bare_summary.map(|bare| p.throughput / bare.throughput),
            plexus: p,
            baseline: b,
            bare: bare_summary,
            plexus_rounds: plexus.to_vec(),
            baseline_rounds: raw.to_vec(),
            bare_rounds: bare.cloned().unwrap_or_default(),
        }
    }

    pub fn progress_line(&self) -> String {
        let bare = match (self.bare, self.bare_ratio) {
            (Some(bare), Some(ratio)) => format!(
                "; bare baseline {:.0} msg/s, ratio {ratio:.2}",
                bare.throughput
            ),
            _ => String::new(),
        };
        let warmup = if self.plexus.warmup_ms > 0.0 {
            format!(
                "; warm-up plexus {:.1} ms, baseline {:.1} ms",
                self.plexus.warmup_ms, self.baseline.warmup_ms
            )
        } else {
            String::new()
        };
        let cpu = match (self.plexus.cpu_us_per_msg, self.baseline.cpu_us_per_msg) {
            (Some(plexus), Some(baseline)) => {
                format!("; client CPU plexus {plexus:.1} µs/msg, baseline {baseline:.1} µs/msg")
            }
            _ => String::new(),
        };
        format!(
            "{:>5} B × {:>2} publishers: plexus {:.0} msg/s, baseline {:.0} msg/s, ratio {:.2}{bare}{warmup}{cpu}",
            self.payload_bytes,
            self.publishers,
            self.plexus.throughput,
            self.baseline.throughput,
            self.ratio
        )
    }
}

/// Throughput at one publisher count (64 B).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CurvePoint {
    pub publishers: usize,
    pub throughput: f64,
}

/// One floor and whether it holds.
#[derive(Debug, Clone, Serialize)]
pub struct Floor {
    pub name: String,
    pub value: f64,
    pub bound: f64,
    /// The value must not exceed the bound (else: reach it).
    pub at_most: bool,
    pub holds: bool,
}

/// The floors of `backend`, checked on the 64 B, 16-publisher row.
pub fn floors(backend: Backend, rows: &[Row]) -> Vec<Floor> {
    let Some(row) = rows
        .iter()
        .find(|r| r.payload_bytes == 64 && r.publishers == 16)
    else {
        return Vec::new();
    };
    let floor = |name: &str, value: f64, bound: f64| Floor {
        name: name.to_owned(),
        value,
        bound,
        at_most: false,
        holds: value >= bound,
    };
    match backend {
        Backend::Memory => vec![floor(
            "memory publish+consume msg/s (64 B, 16 publishers)",
            row.plexus.throughput,
            1_000_000.0,
        )],
        Backend::Nats => broker_floors("NATS", "async-nats", rows),
        Backend::Rabbitmq => broker_floors("RabbitMQ", "lapin", rows),
        #[cfg(feature = "kafka")]
        Backend::Kafka => broker_floors("Kafka", "rdkafka", rows),
        Backend::Postgres => broker_floors("PostgreSQL", "sqlx", rows),
        Backend::Sqlite => vec![
            floor(
                "SQLite publish+consume / raw batched inserts (64 B, 16 publishers)",
                row.ratio,
                0.8,
            ),
            floor(
                "SQLite durable publish+consume msg/s (64 B, 16 publishers)",
                row.plexus.throughput,
                50_000.0,
            ),
        ],
    }
}

/// A broker backend, on every row: throughput ≥ 0.9 × its raw client's
/// (sending the same CloudEvents), p99 ≤ 1.2 × raw's.
fn broker_floors(backend: &str, client: &str, rows: &[Row]) -> Vec<Floor> {
    rows.iter()
        .flat_map(|r| {
            let what = format!("{} B, {} publishers", r.payload_bytes, r.publishers);
            let p99 = r.plexus.p99_us / r.baseline.p99_us;
            [
                Floor {
                    name: format!("{backend} publish+consume / raw {client} ({what})"),
                    value: r.ratio,
                    bound: 0.9,
                    at_most: false,
                    holds: r.ratio >= 0.9,
                },
                Floor {
                    name: format!("{backend} p99 / raw {client} p99 ({what})"),
                    value: p99,
                    bound: 1.2,
                    at_most: true,
                    holds: p99 <= 1.2,
                },
            ]
        })
        .collect()
}

pub fn print(rows: &[Row], curve: &[CurvePoint], floors: &[Floor]) {
    println!();
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                format!("{} B", r.payload_bytes),
                r.publishers.to_string(),
                format!("{:.0}", r.plexus.throughput),
                format!("{:.0}", r.plexus.publish_throughput),
                format!("{:.0}", r.plexus.p50_us),
                format!("{:.0}", r.plexus.p99_us),
                format!("{:.0}", r.baseline.throughput),
                format!("{:.0}", r.baseline.p50_us),
                format!("{:.0}", r.baseline.p99_us),
                format!("{:.2}", r.ratio),
                r.bare
                    .map_or("-".to_owned(), |b| format!("{:.0}", b.throughput)),
                r.bare
                    .map_or("-".to_owned(), |b| format!("{:.0}", b.p99_us)),
                r.bare_ratio
                    .map_or("-".to_owned(), |ratio| format!("{ratio:.2}")),
            ]
        })
        .collect();
    print_table(
        &[
            "payload",
            "publishers",
            "msg/s",
            "publish msg/s",
            "p50 µs",
            "p99 µs",
            "baseline msg/s",
            "base p50",
            "base p99",
            "ratio",
            "bare msg/s",
            "bare p99",
            "bare ratio",
        ],
        &body,
    );
    println!();
    let points: Vec<String> = curve
        .iter()
        .map(|p| format!("{} → {:.0}", p.publishers, p.throughput))
        .collect();
    println!(
        "throughput vs publishers (64 B, msg/s): {}",
        points.join(", ")
    );
    for f in floors {
        println!(
            "floor: {} = {:.2} ({} {}): {}",
            f.name,
            f.value,
            if f.at_most { "≤" } else { "≥" },
            f.bound,
            if f.holds { "holds" } else { "FAILS" }
        );
    }
}
