//! `plexus`: run the reference shop, call services, measure.

mod bench;
mod bus;
mod call;
mod demo;
mod relay;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Every task of a bus, a server or a bench allocates from many threads at
/// once (messages, deliveries, frames): mimalloc's per-thread heaps serve
/// that with far less contention than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// plexus: communication and integration between services.
#[derive(Debug, Parser)]
#[command(name = "plexus", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the reference shop on loopback, drive a workload through every
    /// pattern, and print a report; exits 0 only when every invariant holds.
    Demo(demo::Args),
    /// Call a gRPC method, described by the server's reflection, with JSON.
    Call(call::Args),
    /// Publish one message to a topic of a bus (`memory:`, `sqlite://PATH`,
    /// `nats://HOST:PORT`).
    Pub(bus::PubArgs),
    /// Print a topic's messages as CloudEvents JSON lines, acknowledging
    /// each once printed.
    Sub(bus::SubArgs),
    /// Relay an outbox topic to another bus: publish what committed
    /// transactions wrote, acknowledging at the source once accepted.
    Relay(relay::Args),
    /// Measure plexus against the raw baseline in the same run.
    #[command(subcommand)]
    Bench(bench::Command),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PLEXUS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async move {
        match cli.command {
            Command::Demo(args) => demo::run(args).await.map(|()| ExitCode::SUCCESS),
            Command::Call(args) => Ok(call::run(args).await),
            Command::Pub(args) => bus::publish(args).await.map(|()| ExitCode::SUCCESS),
            Command::Sub(args) => bus::subscribe(args).await.map(|()| ExitCode::SUCCESS),
            Command::Relay(args) => relay::run(args).await.map(|()| ExitCode::SUCCESS),
            Command::Bench(command) => bench::run(command).await.map(|()| ExitCode::SUCCESS),
        }
    });
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
