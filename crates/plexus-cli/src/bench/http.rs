//! `plexus bench http`: one unary call, `Quotes/Quote`
//! (`proto/plexus/bench/v1/bench.proto`), five ways, in the same run:
//!
//! | scenario | path |
//! |---|---|
//! | `gateway` | HTTP/1.1 JSON → plexus REST gateway → gRPC → plexus server |
//! | `grpc` | plexus gRPC client → plexus server (HTTP/2, protobuf) |
//! | `axum` | HTTP/1.1 JSON → bare axum handler doing the same work |
//! | `plexus-http` | the same handler mounted on the gateway, behind its request handling (request slot, deadline and trace, body limit, JSON errors) |
//! | `http-hop` | HTTP/1.1 JSON → bare axum handler that reads the request bytes and answers the reply bytes, already encoded: one loopback hop as a REST client makes it (the client writes the JSON request and reads the JSON reply, as in `gateway`), with no work on the server |
//!
//! Every server runs in this process on loopback TCP, on the same
//! multi-thread runtime as the load generator ([`load`]), as in
//! `plexus bench rpc`. Each measurement opens fresh connections (see
//! [`callers`] for the clients); after a warm-up of every scenario, rounds
//! run the five scenarios back to back, the two sides of each floor next
//! to each other and the order alternating ([`round_order`]), and every
//! figure is the median over rounds ([`table`]). Bytes on
//! the wire are counted on the client's sockets ([`wire`]). A codec
//! micro-benchmark ([`codec`]) times protobuf against JSON on the same
//! messages.
//!
//! Floors (checked at concurrency 1, where p50 is a call's cost rather than
//! queueing): the gateway's p50 is at most 1.3 × the direct gRPC p50 plus
//! one loopback hop, the hop being the p50 of `http-hop` measured in the
//! same round; and, at every concurrency and payload, `plexus-http` serves
//! at least 0.95 × the requests per second of bare `axum`.

mod callers;
mod codec;
mod json;
mod plain;
mod quote;
mod servers;
mod table;
mod wire;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http::Uri;
use prost::Message as _;
use serde::Serialize;

use super::load;
use super::output::{Machine, write_json};
use callers::{AnyCaller, GrpcCaller, HttpCall, HttpCaller, HttpClient, http_client};
use json::{QuoteReplyJson, QuoteRequestJson};
use quote::{GATEWAY_PATH, QuoteRequest};
use servers::{Servers, plexus_channel};
use table::{FLOORS, Measured, Row};
use wire::WireCounter;

/// The ways the call is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// REST/JSON through the plexus gateway to the gRPC server.
    Gateway,
    /// gRPC, plexus client to plexus server.
    Grpc,
    /// The plain JSON handler on bare axum.
    Axum,
    /// The plain JSON handler on the gateway, behind its request handling.
    PlexusHttp,
    /// The same REST exchange against a server that does no work (the
    /// loopback hop).
    HttpHop,
}

impl Scenario {
    /// Every scenario, in the order of the first round.
    pub const ALL: [Scenario; 5] = [
        Scenario::Gateway,
        Scenario::Grpc,
        Scenario::Axum,
        Scenario::PlexusHttp,
        Scenario::HttpHop,
    ];

    /// The scenario's name in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Gateway => "gateway",
            Scenario::Grpc => "grpc",
            Scenario::Axum => "axum",
            Scenario::PlexusHttp => "plexus-http",
            Scenario::HttpHop => "http-hop",
        }
    }
}

/// The request sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Payload {
    /// One line: tens of bytes.
    #[serde(rename = "small")]
    Small,
    /// 38 lines: about 1 KiB of protobuf (about 2.3 KiB of JSON).
    #[serde(rename = "1KiB")]
    Kib,
}

impl Payload {
    const ALL: [Payload; 2] = [Payload::Small, Payload::Kib];

    /// Lines in the request.
    fn lines(self) -> usize {
        match self {
            Payload::Small => 1,
            Payload::Kib => 38,
        }
    }

    /// The payload's name in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Payload::Small => "small",
            Payload::Kib => "1KiB",
        }
    }
}

/// A request of one payload, in every form the callers need.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// Its size.
    pub payload: Payload,
    /// The protobuf message.
    pub request: QuoteRequest,
    /// Its JSON twin.
    pub json: QuoteRequestJson,
    /// Its JSON encoding.
    pub json_bytes: Bytes,
    /// The JSON reply to it, as the gateway writes it.
    pub reply_json: Bytes,
    /// Its protobuf encoding's length.
    pub protobuf_len: usize,
    /// The total every reply must carry.
    pub total_cents: i64,
}

impl Fixture {
    fn new(payload: Payload) -> anyhow::Result<Self> {
        let request = quote::request(payload.lines());
        let reply = quote::quote(request.clone())
            .map_err(|e| anyhow::anyhow!("the bench request is invalid: {}", e.0))?;
        let json = QuoteRequestJson::from(request.clone());
        let json_bytes = Bytes::from(serde_json::to_vec(&json)?);
        let reply_json = Bytes::from(serde_json::to_vec(&QuoteReplyJson::from(reply.clone()))?);
        Ok(Fixture {
            reply_json,
            payload,
            protobuf_len: request.encoded_len(),
            request,
            json,
            json_bytes,
            total_cents: reply.total_cents,
        })
    }
}

const CONCURRENCY: [usize; 2] = [1, 64];

/// Arguments of `plexus bench http`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Length of one measurement (one scenario, one round), e.g. `1s`,
    /// `250ms`. Default 250ms (100ms with --quick).
    #[arg(long, value_parser = super::parse_duration)]
    duration: Option<Duration>,
    /// Rounds; each round measures every scenario once, and medians over
    /// rounds are reported. Default 30 (1 with --quick).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    rounds: Option<u32>,
    /// Warm-up per scenario, payload and concurrency before the rounds.
    /// Default 0.3s (0.05s with --quick).
    #[arg(long, value_parser = super::parse_duration)]
    warmup: Option<Duration>,
    /// Where to write the results as JSON.
    #[arg(long, default_value = "bench-results/http.json")]
    json: PathBuf,
    /// A fast smoke run: short measurements, one round, a short codec
    /// benchmark. Its figures are only good for checking that everything
    /// runs.
    #[arg(long)]
    quick: bool,
    /// Only these concurrencies (repeatable; any value from 1 to 512).
    /// Default: 1 and 64.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=512))]
    concurrency: Vec<u16>,
    /// Run only this scenario, for `--duration` per payload and
    /// concurrency, and print its figures: for profiling one path (e.g.
    /// under `perf record`). No floors, no codec benchmark, no JSON.
    #[arg(long, value_enum)]
    only: Option<Scenario>,
}

/// The settings a run used, as recorded in the JSON.
#[derive(Debug, Clone, Serialize)]
struct Settings {
    duration_s: f64,
    warmup_s: f64,
    rounds: u32,
    quick: bool,
    concurrency: Vec<usize>,
    http_client: &'static str,
    grpc_client: &'static str,
    wire_bytes: &'static str,
    runtime: &'static str,
}

impl Settings {
    fn from_args(args: &Args) -> Self {
        let (duration, warmup, rounds) = if args.quick {
            (Duration::from_millis(100), Duration::from_millis(50), 1)
        } else {
            (Duration::from_millis(250), Duration::from_millis(300), 30)
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
            concurrency,
            http_client: "hyper-util legacy client, HTTP/1.1 keep-alive, one client and one connection per worker, fresh each round",
            grpc_client: "plexus client layer over one tonic channel (one HTTP/2 connection) per round, shared by the round's workers",
            wire_bytes: "TCP payload bytes on the client's sockets during the measurement, divided by its calls",
            runtime: "tokio multi-thread, one worker per core; servers and load generator in one process",
        }
    }

    fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.duration_s)
    }

    fn warmup(&self) -> Duration {
        Duration::from_secs_f64(self.warmup_s)
    }

    /// The warm-up of each round's fresh connections: a tenth of a round.
    fn round_warmup(&self) -> Duration {
        self.duration() / 10
    }
}

/// The whole result of one run.
#[derive(Debug, Serialize)]
struct Document {
    bench: &'static str,
    machine: Machine,
    settings: Settings,
    floors: table::FloorSpec,
    all_floors_hold: bool,
    scenarios: Vec<Row>,
    codec: codec::Report,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let settings = Settings::from_args(&args);
    let machine = Machine::detect();
    eprintln!(
        "plexus bench http: {} cores, {} build; {} round(s) of {:.2}s per scenario after {:.2}s warm-up",
        machine.cores,
        machine.build_profile,
        settings.rounds,
        settings.duration_s,
        settings.warmup_s
    );
    if machine.build_profile == "debug" {
        eprintln!("note: this is a debug build; build with --release for meaningful figures");
    }
    let fixtures = Payload::ALL
        .into_iter()
        .map(Fixture::new)
        .collect::<anyhow::Result<Vec<_>>>()?;

    let servers = Servers::start(&fixtures).await?;
    if let Some(scenario) = args.only {
        alone(&servers, scenario, &fixtures, &settings).await?;
        return servers.stop().await;
    }
    let mut rows = Vec::new();
    for fixture in &fixtures {
        for &concurrency in &settings.concurrency {
            let row = measure(&servers, fixture, concurrency, &settings).await?;
            eprintln!("  {}", row.progress_line());
            rows.push(row);
        }
    }
    servers.stop().await?;

    eprintln!("codec micro-benchmark...");
    let quick = settings.quick;
    let codec_fixtures = fixtures.clone();
    let codec = tokio::task::spawn_blocking(move || codec::run(&codec_fixtures, quick))
        .await
        .context("the codec benchmark panicked")??;

    println!();
    table::print(&rows);
    println!();
    codec::print(&codec);
    let document = Document {
        bench: "http",
        machine,
        all_floors_hold: rows.iter().all(Row::floors_hold),
        settings,
        floors: FLOORS,
        scenarios: rows,
        codec,
    };
    write_json(&args.json, &document)?;
    println!("results written to {}", args.json.display());
    Ok(())
}

/// Measures every scenario for one payload at one concurrency.
async fn measure(
    servers: &Servers,
    fixture: &Fixture,
    concurrency: usize,
    settings: &Settings,
) -> anyhow::Result<Row> {
    for scenario in Scenario::ALL {
        let connections = Connections::open(servers, scenario, fixture, concurrency).await?;
        load::run(connections.callers(), settings.warmup()).await?;
    }
    let mut measured: Vec<Vec<Measured>> = vec![Vec::new(); Scenario::ALL.len()];
    for round in 0..settings.rounds as usize {
        for scenario in round_order(round) {
            let index = Scenario::ALL
                .iter()
                .position(|&s| s == scenario)
                .expect("every scenario is in ALL");
            // Fresh connections each round: where the runtime places a
            // connection's tasks can favour it for its whole life.
            let connections = Connections::open(servers, scenario, fixture, concurrency).await?;
            load::run(connections.callers(), settings.round_warmup()).await?;
            let wire_before = connections.wire.snapshot();
            let upstream_before = servers.upstream_wire().snapshot();
            let sample = load::run(connections.callers(), settings.duration()).await?;
            let wire = connections.wire.snapshot().since(wire_before);
            let upstream = (scenario == Scenario::Gateway)
                .then(|| servers.upstream_wire().snapshot().since(upstream_before));
            measured[index].push(Measured::new(&sample, wire, upstream));
        }
    }
    Ok(Row::new(fixture, concurrency, measured))
}

/// The order of the scenarios in `round`: the two of each floor back to
/// back (`gateway`, `grpc`, `http-hop`; `axum`, `plexus-http`), so that the
/// machine's speed, which drifts over seconds on a shared host, is the same
/// for both sides of a comparison; which block and which scenario go first
/// alternates from round to round.
fn round_order(round: usize) -> Vec<Scenario> {
    let mut gateway = vec![Scenario::Gateway, Scenario::Grpc, Scenario::HttpHop];
    let mut plain = vec![Scenario::Axum, Scenario::PlexusHttp];
    if round % 2 == 1 {
        gateway.reverse();
        plain.reverse();
    }
    if round % 4 >= 2 {
        plain.extend(gateway);
        plain
    } else {
        gateway.extend(plain);
        gateway
    }
}

/// Runs `scenario` alone for each payload and concurrency (one
/// measurement each, after the warm-up) and prints its figures.
async fn alone(
    servers: &Servers,
    scenario: Scenario,
    fixtures: &[Fixture],
    settings: &Settings,
) -> anyhow::Result<()> {
    for fixture in fixtures {
        for &concurrency in &settings.concurrency {
            let connections = Connections::open(servers, scenario, fixture, concurrency).await?;
            load::run(connections.callers(), settings.warmup()).await?;
            let before = connections.wire.snapshot();
            let sample = load::run(connections.callers(), settings.duration()).await?;
            let measured = Measured::new(&sample, connections.wire.snapshot().since(before), None);
            println!(
                "{} {:<5} c={:<3} {:>8.0} req/s  p50 {:>8.1} µs  p99 {:>8.1} µs  {:>6.0} B/call",
                scenario.name(),
                fixture.payload.name(),
                concurrency,
                measured.figures.throughput,
                measured.figures.p50_us,
                measured.figures.p99_us,
                measured.bytes_per_call.total
            );
        }
    }
    Ok(())
}

/// The connections of one scenario for one measurement, and the counter of
/// the bytes they move.
struct Connections {
    kind: ConnectionKind,
    wire: WireCounter,
}

enum ConnectionKind {
    Http {
        clients: Vec<HttpClient>,
        uri: Uri,
        call: HttpCall,
    },
    Grpc {
        channel: plexus_rpc::client::Channel,
        workers: usize,
        request: QuoteRequest,
        total_cents: i64,
    },
}

impl Connections {
    async fn open(
        servers: &Servers,
        scenario: Scenario,
        fixture: &Fixture,
        concurrency: usize,
    ) -> anyhow::Result<Self> {
        let wire = WireCounter::default();
        let quote = HttpCall {
            request: fixture.json.clone(),
            total_cents: fixture.total_cents,
        };
        let http = |base: &str, path: &str, call: HttpCall| -> anyhow::Result<ConnectionKind> {
            let uri: Uri = format!("{base}{path}")
                .parse()
                .with_context(|| format!("invalid URL {base}{path}"))?;
            Ok(ConnectionKind::Http {
                clients: (0..concurrency).map(|_| http_client(&wire)).collect(),
                uri,
                call,
            })
        };
        let kind = match scenario {
            Scenario::Gateway => http(&servers.gateway_url(), GATEWAY_PATH, quote)?,
            Scenario::PlexusHttp => http(&servers.gateway_url(), plain::QUOTE_PATH, quote)?,
            Scenario::Axum => http(servers.bare_url(), plain::QUOTE_PATH, quote)?,
            Scenario::HttpHop => http(
                servers.bare_url(),
                &servers::hop_path(fixture.payload),
                quote,
            )?,
            Scenario::Grpc => ConnectionKind::Grpc {
                channel: plexus_channel(&servers.rpc_url(), wire.clone()).await?,
                workers: concurrency,
                request: fixture.request.clone(),
                total_cents: fixture.total_cents,
            },
        };
        Ok(Connections { kind, wire })
    }

    /// One caller per worker.
    fn callers(&self) -> Vec<AnyCaller> {
        match &self.kind {
            ConnectionKind::Http { clients, uri, call } => clients
                .iter()
                .map(|client| {
                    AnyCaller::Http(HttpCaller::new(client.clone(), uri.clone(), call.clone()))
                })
                .collect(),
            ConnectionKind::Grpc {
                channel,
                workers,
                request,
                total_cents,
            } => (0..*workers)
                .map(|_| AnyCaller::Grpc(GrpcCaller::new(channel, request.clone(), *total_cents)))
                .collect(),
        }
    }
}
