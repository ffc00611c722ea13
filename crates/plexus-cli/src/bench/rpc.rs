//! `plexus bench rpc`: the plexus gRPC stack against bare tonic.
//!
//! Both servers serve the same [`EchoService`] in this process, on loopback
//! TCP, on the same multi-thread runtime as the load generator:
//!
//! - **plexus**: [`plexus_rpc::Server`] with its per-call layers (context:
//!   deadline, trace, cancellation; message-size limits; HTTP/2 keepalive;
//!   no TLS, no auth). By default it is called through the same plain
//!   tonic channel as the bare server, so the ratio is the cost of the
//!   plexus server stack (what the floors are about); with
//!   `--client plexus` it is called through a
//!   [`ClientBuilder`](plexus_rpc::client::ClientBuilder) channel
//!   (deadline, trace and cancellation propagation): plexus end to end;
//! - **bare**: `tonic::transport::Server` with the generated `EchoServer`,
//!   called through a plain `tonic::transport::Endpoint` channel. With
//!   `--bare-keepalive` the bare server also gets the HTTP/2 keepalive a
//!   plexus server has by default, which hyper pays for on every frame and
//!   every wake of a connection: that comparison shows the cost of plexus's
//!   layers alone.
//!
//! Each measurement opens one channel (one HTTP/2 connection) and shares it
//! among its workers, as a service talking to one peer would. The channel is
//! new in every round: where the runtime happens to place a connection's
//! tasks can favour it for its whole life, and a fresh connection per round
//! draws that placement anew instead of fixing it for a whole scenario.
//! After a warm-up of both stacks, rounds alternate the stacks (plexus first
//! in even rounds, bare first in odd ones) so that machine noise hits both
//! alike; each round's fresh connection gets a short warm-up of its own
//! (a tenth of the round). See [`report`](super::report) for how rounds
//! become figures.

mod stacks;

use std::path::PathBuf;
use std::time::Duration;

use plexus_rpc::echo::EchoService;
use serde::Serialize;

use super::load;
use super::output::{Document, Machine, write_json};
use super::report::{self, Figures, Floors, Row, RowSpec};
use stacks::{Channel, EchoCaller, Keepalive, Servers, Stack};

/// Throughput and p50 floors plexus must clear against bare tonic.
const FLOORS: Floors = Floors {
    min_throughput_ratio: 0.95,
    max_p50_overhead_us: 10.0,
    p50_checked_at_concurrency: 1,
};

/// The calls a scenario makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// `Echo/Unary`.
    Unary,
    /// `Echo/ServerStream`.
    ServerStream,
}

/// One scenario: a kind of call and its payload.
#[derive(Debug, Clone, Copy)]
struct Scenario {
    kind: Kind,
    payload: usize,
    /// Replies per call (1 for unary calls).
    replies: u32,
}

const SCENARIOS: [Scenario; 3] = [
    Scenario {
        kind: Kind::Unary,
        payload: 64,
        replies: 1,
    },
    Scenario {
        kind: Kind::Unary,
        payload: 4096,
        replies: 1,
    },
    Scenario {
        kind: Kind::ServerStream,
        payload: 64,
        replies: 100,
    },
];

const CONCURRENCY: [usize; 2] = [1, 64];

impl Scenario {
    fn name(&self) -> &'static str {
        match self.kind {
            Kind::Unary => "unary",
            Kind::ServerStream => "server-stream",
        }
    }

    fn unit(&self) -> &'static str {
        match self.kind {
            Kind::Unary => "req/s",
            Kind::ServerStream => "msg/s",
        }
    }
}

/// Arguments of `plexus bench rpc`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Length of one measurement (one stack, one round), e.g. `1s`, `250ms`.
    /// Default 250ms (150ms with --quick).
    #[arg(long, value_parser = super::parse_duration)]
    duration: Option<Duration>,
    /// Rounds per scenario; each round measures both stacks, and medians
    /// over rounds are reported. Many short rounds pair the two stacks
    /// more closely in time than a few long ones. Default 20 (1 with
    /// --quick).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    rounds: Option<u32>,
    /// Warm-up per stack and scenario before the rounds. Default 0.5s
    /// (0.05s with --quick).
    #[arg(long, value_parser = super::parse_duration)]
    warmup: Option<Duration>,
    /// Where to write the results as JSON.
    #[arg(long, default_value = "bench-results/rpc.json")]
    json: PathBuf,
    /// A fast smoke run: short measurements, one round. Its figures are
    /// only good for checking that everything runs.
    #[arg(long)]
    quick: bool,
    /// Give the bare tonic server the HTTP/2 keepalive a plexus server has
    /// by default (a ping every 30 s on an idle connection, 10 s to
    /// answer), so that the comparison isolates plexus's per-call layers.
    /// The floors are meant for the default comparison, without it.
    #[arg(long)]
    bare_keepalive: bool,
    /// Which client calls the plexus server. `bare` (the default): the same
    /// plain tonic channel that calls the bare server, so the ratio is the
    /// cost of the plexus server stack, which the floors are about.
    /// `plexus`: a plexus `ClientBuilder` channel (deadline, trace and
    /// cancellation propagation), so the ratio is plexus end to end.
    #[arg(long, value_enum, default_value_t = ClientKind::Bare)]
    client: ClientKind,
    /// Only these call kinds (repeatable). Default: all.
    #[arg(long = "kind", value_enum)]
    kinds: Vec<Kind>,
    /// Only these concurrencies (repeatable; any value from 1 to 1024).
    /// Default: 1 and 64.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    concurrency: Vec<u16>,
}

/// The client that calls the plexus server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientKind {
    /// A plain tonic channel, as for the bare server.
    Bare,
    /// A plexus `ClientBuilder` channel.
    Plexus,
}

/// The settings a run used, as recorded in the JSON.
#[derive(Debug, Clone, Serialize)]
struct Settings {
    duration_s: f64,
    warmup_s: f64,
    rounds: u32,
    quick: bool,
    bare_keepalive: bool,
    plexus_client: ClientKind,
    concurrency: Vec<usize>,
    connections: &'static str,
    runtime: &'static str,
}

impl Settings {
    fn from_args(args: &Args) -> Self {
        let (duration, warmup, rounds) = if args.quick {
            (Duration::from_millis(150), Duration::from_millis(50), 1)
        } else {
            (Duration::from_millis(250), Duration::from_millis(500), 20)
        };
        let concurrency = if args.concurrency.is_empty() {
            CONCURRENCY.to_vec()
        } else {
            args.concurrency.iter().map(|&c| usize::from(c)).collect()
        };
        Settings {
            duration_s: args.duration.unwrap_or(duration).as_secs_f64(),
            warmup_s: args.warmup.unwrap_or(warmup).as_secs_f64(),
            rounds: args.rounds.unwrap_or(rounds),
            quick: args.quick,
            bare_keepalive: args.bare_keepalive,
            plexus_client: args.client,
            concurrency,
            connections: "one per stack and round, shared by the round's workers",
            runtime: "tokio multi-thread, one worker per core; servers and load generator in one process",
        }
    }

    fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.duration_s)
    }

    fn warmup(&self) -> Duration {
        Duration::from_secs_f64(self.warmup_s)
    }

    /// The warm-up of each round's fresh connection: a tenth of a round.
    fn round_warmup(&self) -> Duration {
        self.duration() / 10
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let settings = Settings::from_args(&args);
    let machine = Machine::detect();
    eprintln!(
        "plexus bench rpc: {} cores, {} build; {} round(s) of {:.2}s per stack after {:.2}s warm-up",
        machine.cores,
        machine.build_profile,
        settings.rounds,
        settings.duration_s,
        settings.warmup_s
    );
    if machine.build_profile == "debug" {
        eprintln!("note: this is a debug build; build with --release for meaningful figures");
    }
    let bare_keepalive = args.bare_keepalive.then(Keepalive::plexus_default);
    eprintln!(
        "the plexus server is called through {}",
        match args.client {
            ClientKind::Bare =>
                "the same plain tonic channel as the bare server (server stack compared)",
            ClientKind::Plexus => "a plexus ClientBuilder channel (plexus end to end compared)",
        }
    );
    let servers = Servers::start(EchoService, bare_keepalive, args.client).await?;
    let mut rows = Vec::new();
    for scenario in SCENARIOS {
        if !args.kinds.is_empty() && !args.kinds.contains(&scenario.kind) {
            continue;
        }
        for &concurrency in &settings.concurrency {
            let row = measure(&servers, scenario, concurrency, &settings).await?;
            eprintln!(
                "  {:<13} c={:<3} {:>4} B: plexus/bare throughput {:.3}, p50 {:+.1} µs",
                row.scenario,
                row.concurrency,
                row.payload_bytes,
                row.ratio.throughput,
                row.ratio.p50_diff_us
            );
            rows.push(row);
        }
    }
    servers.stop().await?;

    println!();
    let baseline = match (args.bare_keepalive, args.client) {
        (false, ClientKind::Bare) => "bare tonic server (same client)",
        (true, ClientKind::Bare) => "bare tonic server + keepalive (same client)",
        (false, ClientKind::Plexus) => "bare tonic client and server",
        (true, ClientKind::Plexus) => "bare tonic client and server + keepalive",
    };
    report::print(&rows, &FLOORS, baseline);
    let document = Document {
        bench: "rpc",
        baseline,
        machine,
        all_floors_hold: rows.iter().all(|r| r.floors.holds()),
        settings,
        floors: FLOORS,
        scenarios: rows,
    };
    write_json(&args.json, &document)?;
    println!("results written to {}", args.json.display());
    Ok(())
}

/// Measures one scenario at one concurrency on both stacks.
async fn measure(
    servers: &Servers,
    scenario: Scenario,
    concurrency: usize,
    settings: &Settings,
) -> anyhow::Result<Row> {
    for stack in [Stack::Plexus, Stack::Bare] {
        let channel = servers.connect(stack).await?;
        load::run(callers(&channel, scenario, concurrency), settings.warmup()).await?;
    }
    let mut plexus_rounds = Vec::new();
    let mut bare_rounds = Vec::new();
    for round in 0..settings.rounds {
        let order = if round % 2 == 0 {
            [Stack::Plexus, Stack::Bare]
        } else {
            [Stack::Bare, Stack::Plexus]
        };
        for stack in order {
            // A fresh connection each round: where the runtime places a
            // connection's tasks can favour one connection over another for
            // its whole life, so each round draws that placement anew.
            let channel = servers.connect(stack).await?;
            load::run(
                callers(&channel, scenario, concurrency),
                settings.round_warmup(),
            )
            .await?;
            let sample = load::run(
                callers(&channel, scenario, concurrency),
                settings.duration(),
            )
            .await?;
            match stack {
                Stack::Plexus => plexus_rounds.push(Figures::from(&sample)),
                Stack::Bare => bare_rounds.push(Figures::from(&sample)),
            }
        }
    }
    let spec = RowSpec {
        scenario: scenario.name().to_owned(),
        concurrency,
        payload_bytes: scenario.payload,
        messages_per_call: u64::from(scenario.replies),
        unit: scenario.unit(),
    };
    Ok(Row::new(spec, plexus_rounds, bare_rounds, &FLOORS))
}

/// One worker per call in flight, all sharing `channel`.
fn callers(channel: &Channel, scenario: Scenario, concurrency: usize) -> Vec<EchoCaller> {
    (0..concurrency)
        .map(|_| EchoCaller::new(channel, scenario.kind, scenario.payload, scenario.replies))
        .collect()
}
