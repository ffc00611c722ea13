//! The outbox relay crash loop (TESTING.md, reliability scenarios): a
//! service writes orders and their events through the outbox while
//! `plexus relay` processes take them to the destination bus, each killed
//! with SIGKILL at a random point and started again; a consumer applies
//! every event's effect through its inbox. The run passes with lost = 0
//! (committed, never applied), ghosts = 0 (applied, never committed: a
//! rolled-back order) and effects applied twice = 0. Duplicate
//! deliveries (a killed relay's batch published again) are expected and
//! counted.
//!
//! 10,000 events and 5 kills by default; `PLEXUS_CRASH_FULL=1` runs the
//! full size, 100,000 events and 20 kills.

#![allow(dead_code)]

pub mod stores;

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt as _;
use plexus_core::bus::{Seen, SubscribeOptions, Subscriber};
use rand::Rng as _;
use stores::{Inventory, Orders};
use tokio::process::Child;
use tokio::sync::watch;

/// Events in one transaction.
const PER_TRANSACTION: usize = 10;
/// Every this many transactions, one is rolled back.
const ROLLBACK_EVERY: usize = 23;
/// How long one relay run may take to move the next stretch of events.
const PROGRESS_BOUND: Duration = Duration::from_secs(60);
/// The relay's ack deadline: how soon a killed relay's messages move again.
const RELAY_ACK_DEADLINE: &str = "2s";

/// The run's size: events and kills.
pub fn size() -> (usize, usize) {
    if std::env::var("PLEXUS_CRASH_FULL").is_ok_and(|v| v == "1") {
        (100_000, 20)
    } else {
        (10_000, 5)
    }
}

/// One crash loop: the relay from `from` to `to`, the stores, and the
/// destination's subscriber the consumer reads.
pub struct Case {
    pub name: &'static str,
    pub from: String,
    pub to: String,
    pub topic: String,
    pub orders: Orders,
    pub inventory: Inventory,
    pub destination: Arc<dyn Subscriber>,
    /// Where the relays' standard error goes (printed when one fails).
    pub logs: PathBuf,
}

/// What the run saw.
#[derive(Debug)]
pub struct Outcome {
    pub committed: usize,
    pub rolled_back: usize,
    pub lost: usize,
    pub ghosts: usize,
    pub applied_twice: usize,
    pub duplicates_dropped: u64,
    pub kills: usize,
}

/// Runs the crash loop of `case` with `events` events and `kills` kills.
pub async fn run(case: Case, events: usize, kills: usize) -> Outcome {
    let case = Arc::new(case);
    // Effects applied so far, watched by the kills and the final wait.
    let applied = Arc::new(watch::Sender::new(0u64));
    let again = Arc::new(AtomicU64::new(0));
    let mut members = case
        .destination
        .subscribe(
            &case.topic,
            SubscribeOptions::group("inventory").max_in_flight(64),
        )
        .await
        .unwrap_or_else(|e| panic!("{}: subscribing at the destination: {e}", case.name));
    let consumer = {
        let (case, applied, again) = (Arc::clone(&case), Arc::clone(&applied), Arc::clone(&again));
        tokio::spawn(async move {
            let handled = |delivery: Result<plexus_core::bus::Delivery, _>| {
                let (case, applied, again) =
                    (Arc::clone(&case), Arc::clone(&applied), Arc::clone(&again));
                async move {
                    let delivery =
                        delivery.unwrap_or_else(|e| panic!("{}: consuming: {e}", case.name));
                    match case.inventory.apply(delivery.message()).await {
                        Ok(Seen::First) => {
                            applied.send_modify(|n| *n += 1);
                            delivery.ack().await.unwrap();
                        }
                        Ok(Seen::Again) => {
                            again.fetch_add(1, Ordering::AcqRel);
                            delivery.ack().await.unwrap();
                        }
                        // The database busy, say: the message comes again.
                        Err(e) => {
                            eprintln!(
                                "{}: applying {} failed, sent back: {e}",
                                case.name,
                                delivery.message().id()
                            );
                            let _ = delivery.nack(Duration::from_millis(50)).await;
                        }
                    }
                }
            };
            (&mut members).for_each_concurrent(8, handled).await;
        })
    };

    // The writer: committed and rolled-back ids.
    let writer = {
        let case = Arc::clone(&case);
        tokio::spawn(async move {
            let (mut committed, mut rolled_back) = (HashSet::new(), HashSet::new());
            for (t, first) in (0..events).step_by(PER_TRANSACTION).enumerate() {
                let ids: Vec<String> = (first..(first + PER_TRANSACTION).min(events))
                    .map(|n| format!("order-{n}"))
                    .collect();
                let commit = t % ROLLBACK_EVERY != ROLLBACK_EVERY - 1;
                case.orders
                    .place(&case.topic, &ids, commit)
                    .await
                    .unwrap_or_else(|e| panic!("{}: placing orders: {e}", case.name));
                if commit {
                    committed.extend(ids);
                } else {
                    rolled_back.extend(ids);
                }
            }
            (committed, rolled_back)
        })
    };

    // The relays: each killed once the consumer moved a random stretch on.
    let stretch = (events / (kills + 1)).max(1);
    let mut relay = start_relay(&case, 0);
    for k in 0..kills {
        let target = *applied.borrow() + rand::rng().random_range(1..=stretch as u64);
        wait_for(&case, &applied, target, &mut relay, k).await;
        relay.start_kill().unwrap();
        relay.wait().await.unwrap();
        relay = start_relay(&case, k + 1);
    }
    let (committed, rolled_back) = writer.await.unwrap();
    wait_for(&case, &applied, committed.len() as u64, &mut relay, kills).await;
    let _ = relay.start_kill();
    let _ = relay.wait().await;
    consumer.abort();
    let _ = consumer.await;

    let effects = case.inventory.effects().await;
    let seen: HashSet<&str> = effects.iter().map(|(id, _)| id.as_str()).collect();
    let outcome = Outcome {
        committed: committed.len(),
        rolled_back: rolled_back.len(),
        lost: committed
            .iter()
            .filter(|id| !seen.contains(id.as_str()))
            .count(),
        ghosts: seen.iter().filter(|id| !committed.contains(**id)).count(),
        applied_twice: effects.iter().filter(|(_, n)| *n > 1).count(),
        duplicates_dropped: again.load(Ordering::Acquire),
        kills,
    };
    case.orders.close().await;
    case.inventory.close().await;
    let _ = case.destination.close().await;
    outcome
}

fn start_relay(case: &Case, run: usize) -> Child {
    let log = std::fs::File::create(case.logs.join(format!("relay-{run}.log"))).unwrap();
    tokio::process::Command::new(env!("CARGO_BIN_EXE_plexus"))
        .args([
            "relay",
            &case.from,
            &case.topic,
            &case.to,
            "--ack-deadline",
            RELAY_ACK_DEADLINE,
            "--batch",
            "100",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("the plexus binary starts")
}

/// Waits until `target` effects were applied, failing when the relay
/// exits on its own or nothing moves for [`PROGRESS_BOUND`].
async fn wait_for(
    case: &Case,
    applied: &watch::Sender<u64>,
    target: u64,
    relay: &mut Child,
    run: usize,
) {
    let log =
        || std::fs::read_to_string(case.logs.join(format!("relay-{run}.log"))).unwrap_or_default();
    let mut seen = applied.subscribe();
    loop {
        let now = *seen.borrow_and_update();
        if now >= target {
            return;
        }
        tokio::select! {
            moved = tokio::time::timeout(PROGRESS_BOUND, seen.changed()) => {
                if moved.is_err() {
                    panic!(
                        "{}: stuck at {now} of {target} effects for {PROGRESS_BOUND:?} (relay run {run}); relay log: {}",
                        case.name,
                        log()
                    );
                }
            }
            status = relay.wait() => panic!(
                "{}: relay run {run} exited on its own ({status:?}): {}",
                case.name,
                log()
            ),
        }
    }
}

/// Prints the outcome and checks it.
pub fn check(name: &str, outcome: &Outcome) {
    println!("{name}: {outcome:?}");
    assert!(
        outcome.committed > 0 && outcome.rolled_back > 0,
        "{outcome:?}"
    );
    assert_eq!(
        outcome.lost, 0,
        "{name}: committed events never applied: {outcome:?}"
    );
    assert_eq!(
        outcome.ghosts, 0,
        "{name}: rolled-back events applied: {outcome:?}"
    );
    assert_eq!(
        outcome.applied_twice, 0,
        "{name}: effects applied twice: {outcome:?}"
    );
}
