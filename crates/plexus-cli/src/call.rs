//! `plexus call`.

/// Arguments of `plexus call`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Server address, e.g. http://127.0.0.1:50051.
    addr: String,
}

pub async fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("plexus call is being built")
}
