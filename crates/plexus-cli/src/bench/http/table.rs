//! Rounds into figures, the floors, and the table.
//!
//! Every figure of a scenario is the median over rounds. The floors are
//! paired: each round's gateway p50 is compared with the bound made of the
//! gRPC and hop p50 of the same round, and each round's `plexus-http`
//! throughput with bare `axum`'s of the same round; the median of those
//! per-round comparisons decides, so that drift in machine load between
//! rounds cancels out.

use serde::Serialize;

use super::wire::Wire;
use super::{Fixture, Payload, Scenario};
use crate::bench::load::Sample;
use crate::bench::report::{Figures, median, print_table};

/// The floors of `plexus bench http`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct FloorSpec {
    /// The gateway's p50 is at most this times the direct gRPC p50, plus
    /// one loopback hop.
    pub gateway_p50_factor: f64,
    /// What "one loopback hop" is.
    pub loopback_hop: &'static str,
    /// The concurrency at which the gateway p50 floor is checked.
    pub gateway_p50_checked_at_concurrency: usize,
    /// Lowest acceptable `plexus-http` / `axum` throughput ratio (every
    /// payload and concurrency).
    pub min_plexus_http_throughput_ratio: f64,
}

/// The floors this bench checks.
pub const FLOORS: FloorSpec = FloorSpec {
    gateway_p50_factor: 1.3,
    loopback_hop: "the p50 of http-hop in the same round: the same REST call on loopback (the client writes the JSON request and reads the JSON reply, as in gateway) against a bare axum handler that does no work (reads the body, answers the reply already encoded)",
    gateway_p50_checked_at_concurrency: 1,
    min_plexus_http_throughput_ratio: 0.95,
};

/// Bytes per call, both directions.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct WirePerCall {
    /// Sent by the client (request).
    pub sent: f64,
    /// Received by the client (response).
    pub received: f64,
    /// Both.
    pub total: f64,
}

impl WirePerCall {
    fn new(wire: Wire, calls: u64) -> Self {
        let calls = calls.max(1) as f64;
        let sent = wire.sent as f64 / calls;
        let received = wire.received as f64 / calls;
        WirePerCall {
            sent,
            received,
            total: sent + received,
        }
    }

    fn median<'a>(all: impl Iterator<Item = &'a WirePerCall> + Clone) -> Self {
        WirePerCall {
            sent: median(all.clone().map(|w| w.sent)),
            received: median(all.clone().map(|w| w.received)),
            total: median(all.map(|w| w.total)),
        }
    }
}

/// One scenario in one round.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Measured {
    /// Throughput and latency.
    #[serde(flatten)]
    pub figures: Figures,
    /// Bytes on the client's connections per call.
    pub bytes_per_call: WirePerCall,
    /// For `gateway`: bytes on the gateway's upstream gRPC connection per
    /// call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_bytes_per_call: Option<WirePerCall>,
}

impl Measured {
    /// The figures of `sample`, with the bytes counted during it.
    pub fn new(sample: &Sample, wire: Wire, upstream: Option<Wire>) -> Self {
        Measured {
            figures: Figures::from(sample),
            bytes_per_call: WirePerCall::new(wire, sample.calls),
            upstream_bytes_per_call: upstream.map(|w| WirePerCall::new(w, sample.calls)),
        }
    }
}

/// One scenario over every round.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The scenario.
    pub scenario: Scenario,
    /// Median requests per second.
    pub throughput: f64,
    /// Median p50 latency, µs.
    pub p50_us: f64,
    /// Median p99 latency, µs.
    pub p99_us: f64,
    /// Median bytes per call on the client's connections.
    pub bytes_per_call: WirePerCall,
    /// For `gateway`: median bytes per call on its upstream connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_bytes_per_call: Option<WirePerCall>,
    /// Every round, in order.
    pub rounds: Vec<Measured>,
}

impl Summary {
    fn new(scenario: Scenario, rounds: Vec<Measured>) -> Self {
        let upstream: Vec<WirePerCall> = rounds
            .iter()
            .filter_map(|r| r.upstream_bytes_per_call)
            .collect();
        Summary {
            scenario,
            throughput: median(rounds.iter().map(|r| r.figures.throughput)),
            p50_us: median(rounds.iter().map(|r| r.figures.p50_us)),
            p99_us: median(rounds.iter().map(|r| r.figures.p99_us)),
            bytes_per_call: WirePerCall::median(rounds.iter().map(|r| &r.bytes_per_call)),
            upstream_bytes_per_call: (!upstream.is_empty())
                .then(|| WirePerCall::median(upstream.iter())),
            rounds,
        }
    }
}

/// The gateway latency floor on one row.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct GatewayP50 {
    /// Median gateway p50, µs.
    pub gateway_p50_us: f64,
    /// Median direct gRPC p50, µs.
    pub grpc_p50_us: f64,
    /// Median p50 of the loopback hop (`http-hop`), µs.
    pub hop_p50_us: f64,
    /// Median over rounds of factor × gRPC p50 + hop p50, µs.
    pub bound_us: f64,
    /// Median over rounds of bound − gateway p50, µs (negative: over the
    /// bound).
    pub margin_us: f64,
    /// The same margin with bare `axum` (HTTP plus the JSON work) as the
    /// hop, for reference, µs.
    pub margin_with_axum_as_hop_us: f64,
    /// Whether the floor holds; `None` where it is not checked.
    pub holds: Option<bool>,
}

/// The `plexus-http` throughput floor on one row.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PlexusHttpThroughput {
    /// Median of per-round `plexus-http` / `axum` throughput (the two are
    /// measured back to back in every round).
    pub ratio: f64,
    /// `plexus-http` / `axum` mean throughput over all rounds, for
    /// reference: it swings with the machine's speed between the two
    /// halves of a pair, which the median of pairs does not.
    pub ratio_of_means: f64,
    /// Lowest per-round ratio.
    pub ratio_min: f64,
    /// Highest per-round ratio.
    pub ratio_max: f64,
    /// Median of per-round `plexus-http` − `axum` p50, µs.
    pub p50_diff_us: f64,
    /// Whether the floor holds.
    pub holds: bool,
}

/// One payload at one concurrency: every scenario and the floors.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The request size.
    pub payload: Payload,
    /// Lines in the request.
    pub lines: usize,
    /// The request's protobuf size, bytes.
    pub protobuf_request_bytes: usize,
    /// The request's JSON size, bytes.
    pub json_request_bytes: usize,
    /// Calls in flight.
    pub concurrency: usize,
    /// Every scenario, in [`Scenario::ALL`] order.
    pub results: Vec<Summary>,
    /// The gateway latency floor.
    pub gateway_p50: GatewayP50,
    /// The `plexus-http` throughput floor.
    pub plexus_http_throughput: PlexusHttpThroughput,
    /// Median of per-round gateway / gRPC throughput.
    pub gateway_over_grpc_throughput: f64,
}

impl Row {
    /// Builds a row from the rounds of every scenario (`measured[i]` for
    /// `Scenario::ALL[i]`, one entry per round, round `r` of every
    /// scenario measured in the same round).
    pub fn new(fixture: &Fixture, concurrency: usize, measured: Vec<Vec<Measured>>) -> Self {
        assert_eq!(measured.len(), Scenario::ALL.len(), "one list per scenario");
        let rounds = measured[0].len();
        assert!(rounds > 0, "a row needs at least one round");
        assert!(
            measured.iter().all(|m| m.len() == rounds),
            "every scenario runs in every round"
        );
        let of = |scenario: Scenario| {
            let index = Scenario::ALL
                .iter()
                .position(|&s| s == scenario)
                .expect("every scenario is in ALL");
            &measured[index]
        };
        let per_round = |f: &dyn Fn(usize) -> f64| median((0..rounds).map(f));
        let p50 = |scenario: Scenario, round: usize| of(scenario)[round].figures.p50_us;
        let throughput = |scenario: Scenario, round: usize| of(scenario)[round].figures.throughput;

        let bound = |round: usize, hop: Scenario| {
            FLOORS.gateway_p50_factor * p50(Scenario::Grpc, round) + p50(hop, round)
        };
        let margin_us = per_round(&|r| bound(r, Scenario::HttpHop) - p50(Scenario::Gateway, r));
        let checked = concurrency == FLOORS.gateway_p50_checked_at_concurrency;
        let gateway_p50 = GatewayP50 {
            gateway_p50_us: per_round(&|r| p50(Scenario::Gateway, r)),
            grpc_p50_us: per_round(&|r| p50(Scenario::Grpc, r)),
            hop_p50_us: per_round(&|r| p50(Scenario::HttpHop, r)),
            bound_us: per_round(&|r| bound(r, Scenario::HttpHop)),
            margin_us,
            margin_with_axum_as_hop_us: per_round(&|r| {
                bound(r, Scenario::Axum) - p50(Scenario::Gateway, r)
            }),
            holds: checked.then_some(margin_us >= 0.0),
        };

        let ratios: Vec<f64> = (0..rounds)
            .map(|r| throughput(Scenario::PlexusHttp, r) / throughput(Scenario::Axum, r))
            .collect();
        let mean = |scenario: Scenario| {
            (0..rounds).map(|r| throughput(scenario, r)).sum::<f64>() / rounds as f64
        };
        let ratio = median(ratios.iter().copied());
        let plexus_http_throughput = PlexusHttpThroughput {
            ratio,
            ratio_of_means: mean(Scenario::PlexusHttp) / mean(Scenario::Axum),
            ratio_min: ratios.iter().copied().fold(f64::INFINITY, f64::min),
            ratio_max: ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            p50_diff_us: per_round(&|r| p50(Scenario::PlexusHttp, r) - p50(Scenario::Axum, r)),
            holds: ratio >= FLOORS.min_plexus_http_throughput_ratio,
        };
        let gateway_over_grpc_throughput =
            per_round(&|r| throughput(Scenario::Gateway, r) / throughput(Scenario::Grpc, r));

        Row {
            payload: fixture.payload,
            lines: fixture.request.lines.len(),
            protobuf_request_bytes: fixture.protobuf_len,
            json_request_bytes: fixture.json_bytes.len(),
            concurrency,
            results: Scenario::ALL
                .iter()
                .zip(measured)
                .map(|(&scenario, rounds)| Summary::new(scenario, rounds))
                .collect(),
            gateway_p50,
            plexus_http_throughput,
            gateway_over_grpc_throughput,
        }
    }

    /// Whether every floor checked on this row holds.
    pub fn floors_hold(&self) -> bool {
        self.plexus_http_throughput.holds && self.gateway_p50.holds != Some(false)
    }

    /// A one-line summary, printed as the run goes.
    pub fn progress_line(&self) -> String {
        let g = &self.gateway_p50;
        format!(
            "{:<5} c={:<3}: gateway p50 {:.1} µs (bound {:.1} = {:.1} × grpc {:.1} + hop {:.1}); plexus-http/axum throughput {:.3}",
            self.payload.name(),
            self.concurrency,
            g.gateway_p50_us,
            g.bound_us,
            FLOORS.gateway_p50_factor,
            g.grpc_p50_us,
            g.hop_p50_us,
            self.plexus_http_throughput.ratio
        )
    }
}

/// Prints every scenario of every row, then the floors and whether each
/// holds.
pub fn print(rows: &[Row]) {
    let headers = [
        "payload",
        "conc",
        "scenario",
        "req/s",
        "p50 µs",
        "p99 µs",
        "B/call",
        "request B",
        "response B",
        "upstream B/call",
    ];
    let mut body = Vec::new();
    for row in rows {
        let payload = format!(
            "{} ({} B pb, {} B json)",
            row.payload.name(),
            row.protobuf_request_bytes,
            row.json_request_bytes
        );
        for summary in &row.results {
            body.push(vec![
                payload.clone(),
                row.concurrency.to_string(),
                summary.scenario.name().to_owned(),
                format!("{:.0}", summary.throughput),
                format!("{:.1}", summary.p50_us),
                format!("{:.1}", summary.p99_us),
                format!("{:.0}", summary.bytes_per_call.total),
                format!("{:.0}", summary.bytes_per_call.sent),
                format!("{:.0}", summary.bytes_per_call.received),
                summary
                    .upstream_bytes_per_call
                    .map_or_else(String::new, |w| format!("{:.0}", w.total)),
            ]);
        }
    }
    print_table(&headers, &body);
    println!();
    println!(
        "floor 1: gateway p50 <= {:.1} × grpc p50 + one loopback hop (hop = {}), checked at concurrency {}",
        FLOORS.gateway_p50_factor, FLOORS.loopback_hop, FLOORS.gateway_p50_checked_at_concurrency
    );
    for row in rows {
        let g = &row.gateway_p50;
        let verdict = match g.holds {
            Some(true) => "holds",
            Some(false) => "FAILS",
            None => "not checked",
        };
        println!(
            "  {:<5} c={:<3} gateway {:.1} µs, bound {:.1} µs ({:.1} × {:.1} + {:.1}), margin {:+.1} µs ({:+.1} µs with axum as the hop): {verdict}",
            row.payload.name(),
            row.concurrency,
            g.gateway_p50_us,
            g.bound_us,
            FLOORS.gateway_p50_factor,
            g.grpc_p50_us,
            g.hop_p50_us,
            g.margin_us,
            g.margin_with_axum_as_hop_us
        );
    }
    println!(
        "floor 2: plexus-http throughput >= {:.2} × bare axum, median of back-to-back pairs (every payload and concurrency)",
        FLOORS.min_plexus_http_throughput_ratio
    );
    for row in rows {
        let t = &row.plexus_http_throughput;
        println!(
            "  {:<5} c={:<3} ratio {:.3} (rounds {:.3}..{:.3}; ratio of means {:.3}), p50 {:+.1} µs: {}",
            row.payload.name(),
            row.concurrency,
            t.ratio,
            t.ratio_min,
            t.ratio_max,
            t.ratio_of_means,
            t.p50_diff_us,
            if t.holds { "holds" } else { "FAILS" }
        );
    }
    let all = rows.iter().all(Row::floors_hold);
    println!("all floors hold: {}", if all { "yes" } else { "NO" });
}
