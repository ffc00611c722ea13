//! `plexus demo`.

/// Arguments of `plexus demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep the services running after the report and print their addresses.
    #[arg(long)]
    keep_running: bool,
}

pub async fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("plexus demo is being built")
}
