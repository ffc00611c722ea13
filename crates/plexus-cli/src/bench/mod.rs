//! `plexus bench`.

/// Benchmark scenarios.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// gRPC: the plexus stack against bare tonic.
    Rpc,
}

pub async fn run(_command: Command) -> anyhow::Result<()> {
    anyhow::bail!("plexus bench is being built")
}
