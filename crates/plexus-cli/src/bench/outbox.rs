//! `plexus bench outbox --source postgres|sqlite --to URL`: what the
//! transactional outbox costs a service, how fast its relay moves, and
//! how soon a committed event reaches the destination; the first two
//! beside their baselines in the same run, rounds interleaved.
//!
//! The service is the shop's order placement ([`shop`]): one transaction
//! inserts an order row and its three line rows and commits, on the
//! source database, in tables of the run's own beside the bus's.
//!
//! 1. **Order placement with vs without the outbox write**
//!    ([`transactions`]): `--transactions` sequential transactions, the
//!    one with also writing its `OrderPlaced` event through the outbox,
//!    the two sides alternating in blocks of [`transactions::BLOCK`]
//!    within a round; p50, p99 and mean time per transaction. Floor:
//!    with ≤ 1.1 × without, on the median.
//! 2. **Relay vs raw publish** ([`relay`]): `--messages` events committed
//!    to an outbox topic first (not timed), then a relay (a `Forwarder`,
//!    batches of [`BATCH`]) timed from its start until the destination
//!    accepted the last; against publishing the same messages straight to
//!    the destination in batches of [`BATCH`]. Floor: relay ≥ 0.8 × raw.
//! 3. **Commit → publish lag at a steady rate** ([`lag`]): an open-loop
//!    writer places orders with their events at `--rate` for
//!    `--duration` while a relay runs (woken at commit: LISTEN/NOTIFY on
//!    PostgreSQL, `SqliteOutbox::commit` on SQLite); an event's time is
//!    taken inside its transaction just before the commit, and the relay's
//!    lag meter gives p50, p99 and max to the destination's acceptance.
//!    Floor: p99 ≤ 10 ms, judged on PostgreSQL.
//!
//! Each round runs the three, plexus and baseline alternating which goes
//! first; before the first, a short unmeasured warm-up of 1 and 2 (at
//! most 100 transactions, 1,000 events a side). Every topic is fresh
//! (`bench.outbox.RUN.rN.…`); on PostgreSQL the run has a fresh schema,
//! dropped at the end; on SQLite a temporary database file.

mod counted;
mod destination;
mod lag;
mod relay;
mod setup;
mod shop;
mod table;
mod transactions;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use plexus_core::Message;
use plexus_core::bus::Publisher;
use serde::Serialize;

use super::output::{Machine, write_json};
use destination::Destination;
use setup::redact;
use shop::{Shop, Source};
use table::{Floor, LagRow, RelayRow, TransactionsRow};

/// Messages per publish, the relay's and the raw baseline's.
pub const BATCH: usize = 100;

/// The most events the steady writer may be asked for (`--rate` ×
/// `--duration`).
const MAX_STEADY_EVENTS: f64 = 10_000_000.0;

/// Arguments of `plexus bench outbox`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the outbox writes, with the service's tables.
    #[arg(long, value_enum, default_value_t = Source::Postgres)]
    source: Source,
    /// The PostgreSQL database for `--source postgres`; the bench makes a
    /// fresh schema of its own in it and drops it at the end [default:
    /// postgres://postgres@127.0.0.1:5432/test].
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
    /// The bus the relay publishes to, e.g. `nats://127.0.0.1:4222`
    /// (`memory:` runs embedded); the run's topics are fresh.
    #[arg(long, value_name = "URL", default_value = "memory:")]
    to: String,
    /// Rounds; every figure is the median over them.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    rounds: u32,
    /// Sequential order placements per side and round (measurement 1).
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    transactions: u64,
    /// Events the relay moves per round, and raw publishing too
    /// (measurement 2).
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    messages: u64,
    /// Events committed per second while measuring the lag (measurement 3).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    rate: u32,
    /// How long to commit at `--rate` per round (e.g. `10s`, `500ms`).
    #[arg(long, value_parser = super::parse_duration, default_value = "10s")]
    duration: Duration,
    /// Where to write the results [default: bench-results/outbox-SOURCE.json].
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
}

/// The settings a run measured with.
#[derive(Debug, Clone, Copy, Serialize)]
struct Settings {
    rounds: u32,
    transactions: u64,
    messages: u64,
    batch: usize,
    rate: u32,
    duration_s: f64,
    /// Transactions in flight at most while committing at `rate`.
    writers: u32,
    lines_per_order: usize,
}

/// The whole result of one run.
#[derive(Debug, Serialize)]
struct Document {
    bench: &'static str,
    source: Source,
    /// The PostgreSQL database (password hidden), with `--source postgres`.
    postgres: Option<String>,
    /// The destination bus (password hidden).
    destination: String,
    /// The prefix of the run's topics, on the source and the destination.
    topics: String,
    machine: Machine,
    settings: Settings,
    transactions: TransactionsRow,
    relay: RelayRow,
    lag: LagRow,
    floors: Vec<Floor>,
    all_floors_hold: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let postgres = postgres_url(&args)?;
    let events = args.duration.as_secs_f64() * f64::from(args.rate);
    anyhow::ensure!(
        events <= MAX_STEADY_EVENTS,
        "--rate {} for --duration {:?} asks for {events:.0} events per round; at most {MAX_STEADY_EVENTS:.0}: lower one of them",
        args.rate,
        args.duration
    );
    let settings = Settings {
        rounds: args.rounds,
        transactions: args.transactions,
        messages: args.messages,
        batch: BATCH,
        rate: args.rate,
        duration_s: args.duration.as_secs_f64(),
        writers: args.source.writers(),
        lines_per_order: shop::LINES,
    };
    let machine = Machine::detect();
    let run_id = run_id();
    let topics = format!("bench.outbox.{run_id}");
    let schema = format!("plexus_bench_outbox_{run_id}");
    eprintln!(
        "plexus bench outbox --source {} --to {}: {} cores, {} build; {} round(s); topics {topics}.*",
        args.source.name(),
        redact(&args.to),
        machine.cores,
        machine.build_profile,
        args.rounds
    );
    if args.source == Source::Postgres {
        eprintln!("  PostgreSQL {}, schema {schema}", redact(&postgres));
    }
    let destination = Destination::open(&args.to).await?;
    let shop = match Shop::open(args.source, &postgres, &schema, settings.writers).await {
        Ok(shop) => Arc::new(shop),
        Err(error) => {
            destination.close(&topics).await;
            return Err(error);
        }
    };
    let measured = rounds(settings, &shop, &destination.publisher(), &topics).await;
    let closed = shop.close().await;
    destination.close(&topics).await;
    let (transactions, relay, lag) = measured?;
    closed?;
    let floors = table::floors(args.source, &transactions, &relay, &lag);
    table::print(&transactions, &relay, &lag, &floors, args.rounds);
    let document = Document {
        bench: "outbox",
        source: args.source,
        postgres: (args.source == Source::Postgres).then(|| redact(&postgres)),
        destination: redact(&args.to),
        topics,
        machine,
        settings,
        transactions,
        relay,
        lag,
        all_floors_hold: floors.iter().all(|f| f.holds != Some(false)),
        floors,
    };
    let json = args.json.unwrap_or_else(|| {
        PathBuf::from(format!("bench-results/outbox-{}.json", args.source.name()))
    });
    write_json(&json, &document)?;
    println!("results written to {}", json.display());
    Ok(())
}

/// The PostgreSQL URL to use: `--postgres` (only with `--source
/// postgres`, and without a `schema`: the run makes its own), or the
/// default.
fn postgres_url(args: &Args) -> anyhow::Result<String> {
    let Some(url) = &args.postgres else {
        return Ok(plexus_postgres::DEFAULT_URL.to_owned());
    };
    anyhow::ensure!(
        args.source == Source::Postgres,
        "--postgres is for --source postgres; --source {} needs no database",
        args.source.name()
    );
    let query = url.split_once('?').map_or("", |(_, query)| query);
    anyhow::ensure!(
        !query.split('&').any(|pair| pair.starts_with("schema=")),
        "--postgres {}: leave out `schema=`; the bench makes a fresh schema of its own and drops it at the end",
        redact(url)
    );
    plexus_postgres::PostgresConfig::from_url(url)
        .with_context(|| format!("--postgres {} is not a PostgreSQL URL", redact(url)))?;
    Ok(url.clone())
}

/// A fresh tag for the run's schema and topics: 10 random hex digits.
fn run_id() -> String {
    let id = uuid::Uuid::now_v7().simple().to_string();
    id[id.len() - 10..].to_owned()
}

/// `count` `OrderPlaced` events of fresh orders.
fn events(shop: &Shop, count: u64) -> anyhow::Result<Vec<Message>> {
    (0..count).map(|_| shop.next_order().event()).collect()
}

/// The warm-up, then every round.
async fn rounds(
    settings: Settings,
    shop: &Arc<Shop>,
    destination: &Arc<dyn Publisher>,
    topics: &str,
) -> anyhow::Result<(TransactionsRow, RelayRow, LagRow)> {
    let warm = format!("{topics}.warmup");
    let warm_transactions = settings.transactions.min(100);
    transactions::paired(shop, warm_transactions, &format!("{warm}.orders"), true).await?;
    let messages = events(shop, settings.messages.min(1000))?;
    relay::relay(
        shop,
        destination,
        &format!("{warm}.outbox-relay"),
        &format!("{warm}.relayed"),
        &messages,
    )
    .await?;
    relay::raw(destination, &format!("{warm}.raw"), &messages).await?;

    let steady = lag::Steady {
        rate: settings.rate,
        duration: Duration::from_secs_f64(settings.duration_s),
        writers: settings.writers,
    };
    let (mut with, mut without) = (Vec::new(), Vec::new());
    let (mut relayed, mut raw) = (Vec::new(), Vec::new());
    let mut lags = Vec::new();
    for round in 0..settings.rounds {
        let topic = |what: &str| format!("{topics}.r{round}.{what}");
        // Alternate which side goes first.
        let plexus_first = round % 2 == 0;
        let orders = topic("orders");
        let count = settings.transactions;
        let (with_outbox, without_outbox) =
            transactions::paired(shop, count, &orders, plexus_first).await?;
        with.push(with_outbox);
        without.push(without_outbox);
        let messages = events(shop, settings.messages)?;
        let (from, to) = (topic("outbox-relay"), topic("relayed"));
        if plexus_first {
            relayed.push(relay::relay(shop, destination, &from, &to, &messages).await?);
        }
        raw.push(relay::raw(destination, &topic("raw"), &messages).await?);
        if !plexus_first {
            relayed.push(relay::relay(shop, destination, &from, &to, &messages).await?);
        }
        let lagged = lag::run(
            shop,
            destination,
            &topic("outbox-lag"),
            &topic("lag"),
            steady,
        )
        .await?;
        lags.push(lagged);
        progress(round, &with, &without, &relayed, &raw, &lagged);
    }
    Ok((
        TransactionsRow::new(settings.transactions, with, without),
        RelayRow::new(settings.messages, BATCH, relayed, raw),
        LagRow::new(lags),
    ))
}

fn progress(
    round: u32,
    with: &[transactions::Transactions],
    without: &[transactions::Transactions],
    relayed: &[relay::Throughput],
    raw: &[relay::Throughput],
    lag: &lag::Lag,
) {
    let (Some(with), Some(without), Some(relayed), Some(raw)) =
        (with.last(), without.last(), relayed.last(), raw.last())
    else {
        return;
    };
    eprintln!(
        "  round {}: order placement p50 {:.0} µs with outbox, {:.0} µs without ({:.3}); \
         relay {:.0} msg/s, raw {:.0} msg/s ({:.3}); lag p50 {:.2} ms, p99 {:.2} ms at {:.0}/s",
        round + 1,
        with.p50_us,
        without.p50_us,
        with.p50_us / without.p50_us,
        relayed.per_sec,
        raw.per_sec,
        relayed.per_sec / raw.per_sec,
        lag.p50_us / 1000.0,
        lag.p99_us / 1000.0,
        lag.achieved_rate
    );
}
