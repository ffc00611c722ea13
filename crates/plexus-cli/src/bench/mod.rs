//! `plexus bench`: each scenario measures plexus and its bare baseline in the
//! same run, interleaved round by round, and reports the ratios.
//!
//! Shared parts, for every scenario: [`load`] (closed-loop load generator
//! with hdrhistogram latencies), [`report`] (medians, paired ratios, floors,
//! the table) and [`output`] (machine description and the JSON file).

mod bus;
mod http;
mod load;
mod outbox;
mod output;
mod report;
mod rpc;

use std::time::Duration;

/// Benchmark scenarios.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// gRPC: the plexus stack against bare tonic.
    Rpc(rpc::Args),
    /// HTTP: the REST gateway, direct gRPC, bare axum and plexus's own HTTP
    /// routes on the same call; protobuf against JSON.
    Http(http::Args),
    /// Bus: publish + consume throughput and latency of a backend against
    /// its raw baseline.
    Bus(bus::Args),
    /// Outbox: what the transactional outbox costs a transaction, its
    /// relay against raw publishing, and the commit → publish lag.
    Outbox(outbox::Args),
}

pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Rpc(args) => rpc::run(args).await,
        Command::Http(args) => http::run(args).await,
        Command::Bus(args) => bus::run(args).await,
        Command::Outbox(args) => outbox::run(args).await,
    }
}

/// Parses a duration such as `2s`, `1.5s`, `500ms` or `3` (seconds).
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 1e-3)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number.trim().parse().map_err(|_| {
        format!("`{text}` is not a duration; expected e.g. `2s`, `1.5s` or `500ms`")
    })?;
    let seconds = value * scale;
    if !(seconds.is_finite() && seconds > 0.0 && seconds <= 3600.0) {
        return Err(format!(
            "`{text}` is out of range; a duration must be above 0 and at most 1 hour"
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("2h").is_err());
    }
}
