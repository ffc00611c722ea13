//! `plexus pub URL TOPIC`: publishes one message.

use std::io::Read as _;

use anyhow::Context as _;
use plexus_core::Message;

use super::open::open;

/// Arguments of `plexus pub`.
#[derive(Debug, clap::Args)]
pub struct PubArgs {
    /// The bus, e.g. `memory:`.
    url: String,
    /// The topic.
    topic: String,
    /// The payload: JSON or text inline, `@FILE` to read a file, `-` to
    /// read standard input.
    #[arg(long, default_value = "")]
    data: String,
    /// The ordering key.
    #[arg(long)]
    key: Option<String>,
    /// CloudEvents `type`.
    #[arg(long = "type", default_value = "plexus.cli.Message")]
    ty: String,
    /// CloudEvents `source`.
    #[arg(long, default_value = "/plexus/cli")]
    source: String,
    /// CloudEvents `subject`.
    #[arg(long)]
    subject: Option<String>,
    /// The payload's media type; default `application/json` when the data
    /// parses as JSON, else `text/plain`.
    #[arg(long)]
    content_type: Option<String>,
    /// A header, `name=value` (repeatable).
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
}

/// Payloads read from a file or standard input stop here.
const MAX_DATA_BYTES: u64 = 16 * 1024 * 1024;

fn read_data(data: &str) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let what = if data == "-" {
        std::io::stdin()
            .take(MAX_DATA_BYTES + 1)
            .read_to_end(&mut bytes)
            .context("cannot read the payload from standard input")?;
        "standard input".to_owned()
    } else if let Some(path) = data.strip_prefix('@') {
        std::fs::File::open(path)
            .with_context(|| format!("cannot open the payload file `{path}`"))?
            .take(MAX_DATA_BYTES + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("cannot read the payload file `{path}`"))?;
        format!("`{path}`")
    } else {
        return Ok(data.as_bytes().to_vec());
    };
    anyhow::ensure!(
        bytes.len() as u64 <= MAX_DATA_BYTES,
        "the payload from {what} is over {MAX_DATA_BYTES} bytes"
    );
    Ok(bytes)
}

/// The message `args` describe.
fn message(args: &PubArgs) -> anyhow::Result<Message> {
    let data = read_data(&args.data)?;
    let content_type = args.content_type.clone().unwrap_or_else(|| {
        if serde_json::from_slice::<serde_json::Value>(&data).is_ok() {
            "application/json".to_owned()
        } else {
            "text/plain".to_owned()
        }
    });
    let mut builder = Message::builder(args.ty.clone(), args.source.clone());
    if let Some(key) = &args.key {
        builder = builder.key(key.clone());
    }
    if let Some(subject) = &args.subject {
        builder = builder.subject(subject.clone());
    }
    for header in &args.headers {
        let Some((name, value)) = header.split_once('=') else {
            anyhow::bail!("header `{header}` is not `name=value`");
        };
        builder = builder.header(name.trim(), value.trim());
    }
    if !data.is_empty() {
        builder = builder.payload(content_type, data);
    }
    Ok(builder.build()?)
}

/// Runs `plexus pub`: publishes and prints the message id.
pub async fn publish(args: PubArgs) -> anyhow::Result<()> {
    let message = message(&args)?;
    let bus = open(&args.url).await?;
    let id = message.id().to_owned();
    bus.publisher
        .publish(&args.topic, vec![message])
        .await
        .with_context(|| format!("publishing to `{}` on {}", args.topic, args.url))?;
    bus.publisher.close().await?;
    println!("{id}");
    Ok(())
}
