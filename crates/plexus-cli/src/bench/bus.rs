//! `plexus bench bus --backend memory|sqlite`: publish + consume
//! throughput and end-to-end latency of a plexus bus backend, beside its
//! raw baseline in the same run.
//!
//! One measurement: `publishers` tasks publish `messages` messages of one
//! payload size in batches of [`BATCH`] to a fresh topic while
//! [`CONSUMERS`] members of one consumer group receive and acknowledge
//! them; it ends when the last one is acknowledged. Throughput is messages
//! over that time; latency runs from a message's `time` (set when its
//! batch is built, just before `publish`) to its receipt. On a broker
//! backend, plexus and the raw baselines alike first send and consume
//! [`measure::WARMUP_BATCHES`] batches on the fresh stream, queue, topic
//! or schema, unmeasured: the first batches after setting those and the
//! connections up pay once what a running service does not pay again
//! (query plans, caches, partition leaders), and at 200 batches a round
//! they would set its p99 alone. How long that warm-up took, from the
//! first publish to the last of its acknowledgements, is reported beside
//! the figures (`warmup_ms`), and so is the bench process's CPU time per
//! message while measuring (`cpu_us_per_msg`: what the client costs, the
//! broker's work aside; for a broker's baselines and plexus alike).
//!
//! Baselines ([`baseline`]): for a broker, its raw client twice — sending
//! the same CloudEvents on the wire as plexus's binding does (the floors'
//! baseline) and sending bare payloads (what the binding costs); see
//! [`cloudevent`]. For SQLite, the same messages inserted raw
//! with sqlx into one table with the same durability (WAL,
//! `synchronous=FULL`), one transaction and one multi-row INSERT per batch
//! of 100 — what an application writing its own rows would do; for the
//! in-memory bus, the same messages through a bounded tokio channel to
//! one consumer.
//!
//! Control run (`--control`): the floors' baseline measured in place of
//! plexus too, so that both sides run the same code. How far its ratios
//! stray from 1, and how often its floors fail, is the noise of the host
//! and the broker alone: a run of plexus is read against it.
//!
//! Floors: SQLite publish+consume ≥ 0.8 × the raw insert baseline and ≥
//! 50,000 msg/s for 64 B with 16 publishers; memory ≥ 1,000,000 msg/s for
//! 64 B with 16 publishers.

mod baseline;
mod cloudevent;
#[cfg(feature = "kafka")]
mod kafka;
mod measure;
mod nats;
mod postgres;
mod rabbitmq;
mod table;

use std::path::PathBuf;

use serde::Serialize;

use super::output::{Machine, write_json};
use cloudevent::Wire;
use measure::Measured;

/// Messages per `publish` call.
pub const BATCH: usize = 100;
/// Members of the consumer group.
pub const CONSUMERS: usize = 4;

/// The backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// The in-memory bus.
    Memory,
    /// The SQLite bus (a temporary database file).
    Sqlite,
    /// NATS JetStream (`PLEXUS_BENCH_NATS`, default the local server;
    /// a stream of its own per measurement).
    Nats,
    /// RabbitMQ (`PLEXUS_BENCH_RABBITMQ`, default the local broker; an
    /// exchange and queues of their own per measurement).
    Rabbitmq,
    /// Apache Kafka (`PLEXUS_BENCH_KAFKA`, default 127.0.0.1:9092; a
    /// topic of its own per measurement).
    #[cfg(feature = "kafka")]
    Kafka,
    /// PostgreSQL (`PLEXUS_BENCH_POSTGRES`, default the local server; a
    /// schema of its own per measurement).
    Postgres,
}

impl Backend {
    /// The name on the command line and in file names.
    fn name(self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::Sqlite => "sqlite",
            Backend::Nats => "nats",
            Backend::Rabbitmq => "rabbitmq",
            #[cfg(feature = "kafka")]
            Backend::Kafka => "kafka",
            Backend::Postgres => "postgres",
        }
    }
}

/// One measurement's workload.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    pub backend: Backend,
    /// Bytes per payload.
    pub payload: usize,
    /// Publishing tasks.
    pub publishers: usize,
    /// Messages in all.
    pub messages: u64,
    /// Distinct ordering keys (0: none).
    pub keys: u64,
}

/// Arguments of `plexus bench bus`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The backend to measure.
    #[arg(long, value_enum)]
    backend: Backend,
    /// Messages per measurement (default: memory 200,000, SQLite 50,000;
    /// a tenth with --quick).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1000..=10_000_000))]
    messages: Option<u64>,
    /// Rounds; every figure is the median over them (default 3, 1 with
    /// --quick).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    rounds: Option<u32>,
    /// Give messages ordering keys, this many distinct ones (0: no keys).
    /// With per-key order only one message per key is out at a time, so
    /// few keys bound the consumers' parallelism.
    #[arg(long, default_value_t = 0)]
    keys: u64,
    /// A fast smoke run: few messages, one round.
    #[arg(long)]
    quick: bool,
    /// A control run: measure the floors' baseline in place of plexus as
    /// well (an A/A comparison), to show how far the host's noise alone
    /// moves the ratios and the floors.
    #[arg(long)]
    control: bool,
    /// Where to write the results (default `bench-results/bus-BACKEND.json`,
    /// `bus-BACKEND-control.json` with --control).
    #[arg(long)]
    json: Option<PathBuf>,
}

/// The whole result of one run.
#[derive(Debug, Serialize)]
struct Document {
    bench: &'static str,
    backend: Backend,
    /// Whether the `plexus` figures are the baseline's, measured again
    /// (`--control`).
    control: bool,
    machine: Machine,
    messages: u64,
    keys: u64,
    rounds: u32,
    batch: usize,
    consumers: usize,
    rows: Vec<table::Row>,
    curve: Vec<table::CurvePoint>,
    floors: Vec<table::Floor>,
    all_floors_hold: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let machine = Machine::detect();
    let default_messages = match args.backend {
        Backend::Memory => 200_000,
        _ => 50_000,
    };
    let messages = args.messages.unwrap_or(if args.quick {
        default_messages / 10
    } else {
        default_messages
    });
    let rounds = args.rounds.unwrap_or(if args.quick { 1 } else { 3 });
    eprintln!(
        "plexus bench bus --backend {:?}: {} cores, {} build; {messages} messages per measurement, {rounds} round(s)",
        args.backend, machine.cores, machine.build_profile
    );
    if args.control {
        eprintln!(
            "control run: the baseline is measured in place of plexus too; every ratio compares the baseline with itself"
        );
    }
    let dir = tempfile::tempdir()?;
    let wires = baseline::wires(args.backend);
    let mut rows = Vec::new();
    for payload in [64usize, 1024] {
        for publishers in [1usize, 16] {
            let mut plexus = Vec::new();
            let mut raw: Vec<Vec<Measured>> = vec![Vec::new(); wires.len()];
            for round in 0..rounds {
                let name = format!("r{round}-{payload}-{publishers}");
                let workload = Workload {
                    backend: args.backend,
                    payload,
                    publishers,
                    messages,
                    keys: args.keys,
                };
                let run_plexus = || async {
                    if args.control {
                        let path = dir.path().join(format!("{name}-control"));
                        baseline::run(workload, path, wires[0]).await
                    } else {
                        measure::plexus(workload, dir.path().join(&name)).await
                    }
                };
                let run_raw = |wire: Wire| {
                    baseline::run(
                        workload,
                        dir.path().join(format!("{name}-{}", wire.name())),
                        wire,
                    )
                };
                // Alternate which goes first.
                if round % 2 == 0 {
                    plexus.push(run_plexus().await?);
                }
                for (wire, rounds) in wires.iter().zip(&mut raw) {
                    rounds.push(run_raw(*wire).await?);
                }
                if round % 2 == 1 {
                    plexus.push(run_plexus().await?);
                }
            }
            let row = table::Row::new(payload, publishers, &plexus, &raw[0], raw.get(1));
            eprintln!("  {}", row.progress_line());
            rows.push(row);
        }
    }
    let mut curve = Vec::new();
    // plexus's own curve; a control run has none.
    let curve_publishers: &[usize] = if args.control { &[] } else { &[1, 2, 4, 8, 16] };
    for &publishers in curve_publishers {
        let path = dir.path().join(format!("curve-{publishers}"));
        let measured: Measured = measure::plexus(
            Workload {
                backend: args.backend,
                payload: 64,
                publishers,
                messages,
                keys: args.keys,
            },
            path,
        )
        .await?;
        curve.push(table::CurvePoint {
            publishers,
            throughput: measured.throughput,
        });
    }
    #[cfg(feature = "kafka")]
    if matches!(args.backend, Backend::Kafka) {
        kafka::cleanup_run(dir.path()).await;
    }
    let floors = table::floors(args.backend, &rows);
    table::print(&rows, &curve, &floors);
    if args.control {
        println!(
            "control run: the plexus columns are the baseline measured again; a floor failing here fails on noise alone"
        );
    }
    let document = Document {
        bench: "bus",
        backend: args.backend,
        control: args.control,
        machine,
        messages,
        keys: args.keys,
        rounds,
        batch: BATCH,
        consumers: CONSUMERS,
        all_floors_hold: floors.iter().all(|f| f.holds),
        rows,
        curve,
        floors,
    };
    let json = args.json.unwrap_or_else(|| {
        let control = if args.control { "-control" } else { "" };
        PathBuf::from(format!(
            "bench-results/bus-{}{control}.json",
            args.backend.name()
        ))
    });
    write_json(&json, &document)?;
    println!("results written to {}", json.display());
    Ok(())
}
