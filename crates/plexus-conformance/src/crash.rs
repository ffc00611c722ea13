//! The crash half of `durable_across_restart`: a child process publishes
//! and acknowledges until it is killed with SIGKILL mid-stream; after
//! the backend is reopened, nothing whose publish returned Ok is lost
//! and nothing whose ack returned Ok is delivered to that group again.
//!
//! A backend opts in with [`Backend::crash_child`], giving the command
//! that starts a child process running [`crash_child`] against the same
//! storage; the suite adds the topic in [`TOPIC_VAR`].

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use plexus_core::Message;
use plexus_core::bus::{SubscribeOptions, Subscription};
use tokio::sync::{mpsc, watch};

use crate::Backend;
use crate::support::{Ctx, number_of, numbered};

/// The environment variable giving the child its topic.
pub const TOPIC_VAR: &str = "PLEXUS_CONFORMANCE_CRASH_TOPIC";

const WORKER: &str = "crash-worker";
const AUDIT: &str = "crash-audit";
const PUBLISHERS: usize = 4;
const BATCH: usize = 10;
/// Batches each publisher of the child sends at most.
const MAX_BATCHES: usize = 60;
/// Publishers stay at most this many messages ahead of the acks, so the
/// kill finds both publishing and acknowledging under way.
const AHEAD: usize = 300;
/// The child's ack deadline: leases of the killed child come back after it.
const CHILD_ACK_DEADLINE: Duration = Duration::from_secs(2);

/// The child's side, run in the process the backend's
/// [`crash_child`](Backend::crash_child) command starts: joins a worker
/// group and an audit group on the topic in [`TOPIC_VAR`], publishes
/// numbered messages from 4 tasks and acknowledges them in the worker
/// group, printing `published FIRST` once a batch's publish returned Ok,
/// `acking N` before an ack starts and `acked N` once it returned Ok.
/// Runs until killed.
///
/// # Panics
///
/// Without [`TOPIC_VAR`], or when the backend fails.
pub async fn crash_child(backend: &Backend) {
    let topic = std::env::var(TOPIC_VAR)
        .unwrap_or_else(|_| panic!("crash_child runs in the child process, with {TOPIC_VAR} set"));
    let subscriber = backend.make_subscriber().await.expect("a subscriber");
    let worker_options = SubscribeOptions::group(WORKER).ack_deadline(CHILD_ACK_DEADLINE);
    let mut worker = subscriber
        .subscribe(&topic, worker_options)
        .await
        .expect("joining the worker group");
    let _audit = subscriber
        .subscribe(&topic, SubscribeOptions::group(AUDIT))
        .await
        .expect("joining the audit group");
    let publisher = backend.make_publisher().await.expect("a publisher");
    println!("ready");
    let (acked_count, acked_watch) = watch::channel(0usize);
    let published = Arc::new(AtomicUsize::new(0));
    for p in 0..PUBLISHERS {
        let (publisher, topic) = (Arc::clone(&publisher), topic.clone());
        let (mut acked_watch, published) = (acked_watch.clone(), Arc::clone(&published));
        tokio::spawn(async move {
            for b in 0..MAX_BATCHES {
                let sent = published.fetch_add(BATCH, Ordering::AcqRel);
                if acked_watch
                    .wait_for(|acked| sent <= acked + AHEAD)
                    .await
                    .is_err()
                {
                    return;
                }
                let first = (p * MAX_BATCHES + b) * BATCH;
                let batch: Vec<Message> = (first..first + BATCH)
                    .map(|n| numbered("crash", n, Some(&format!("k{}", n % 5)), None))
                    .collect();
                publisher.publish(&topic, batch).await.expect("publishing");
                println!("published {first}");
            }
        });
    }
    while let Some(delivery) = worker.next().await {
        let delivery = delivery.expect("a delivery");
        let n = number_of(delivery.message()).expect("a numbered message");
        println!("acking {n}");
        delivery.ack().await.expect("acknowledging");
        println!("acked {n}");
        acked_count.send_modify(|count| *count += 1);
    }
}

/// What the child reported before it died. An ack the child started but
/// did not report done may or may not have been stored when it died.
#[derive(Default)]
struct Reported {
    published: BTreeSet<usize>,
    acking: BTreeSet<usize>,
    acked: BTreeSet<usize>,
}

impl Reported {
    fn note(&mut self, line: &str) {
        if let Some(first) = line
            .strip_prefix("published ")
            .and_then(|f| f.parse::<usize>().ok())
        {
            self.published.extend(first..first + BATCH);
        } else if let Some(n) = line.strip_prefix("acking ").and_then(|n| n.parse().ok()) {
            self.acking.insert(n);
        } else if let Some(n) = line.strip_prefix("acked ").and_then(|n| n.parse().ok()) {
            self.acked.insert(n);
        }
    }
}

/// The parent's side, after the reopen half of `durable_across_restart`
/// (see the module documentation); returns without running when the
/// backend gives no child command.
pub(crate) async fn killed_mid_stream(ctx: &Ctx<'_>, backend: &Backend) {
    let Some(mut command) = backend.crash_child_command() else {
        println!(
            "[{}] durable_across_restart: the SIGKILL half skipped: no child command (Backend::crash_child)",
            backend.name()
        );
        return;
    };
    let topic = ctx.topic();
    command
        .env(TOPIC_VAR, &topic)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| ctx.fail(format!("starting the crash child {command:?}: {e}")));
    let stdout = child.stdout.take().expect("a piped stdout");
    let (lines, mut received) = mpsc::unbounded_channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut reported = Reported::default();
    let far_enough = ctx
        .bounded(
            "the crash child publishing 800 and acknowledging 300 messages",
            async {
                while reported.published.len() < 800 || reported.acked.len() < 300 {
                    match received.recv().await {
                        Some(line) => reported.note(&line),
                        None => return false,
                    }
                }
                true
            },
        )
        .await;
    // SIGKILL, mid-stream.
    let killed = child.kill();
    let _ = child.wait();
    ctx.check(far_enough, || {
        format!(
            "the crash child stopped on its own after {} published, {} acked",
            reported.published.len(),
            reported.acked.len()
        )
    });
    if let Err(e) = killed {
        ctx.fail(format!("killing the crash child: {e}"));
    }
    let _ = reader.join();
    while let Ok(line) = received.try_recv() {
        reported.note(&line);
    }
    ctx.check(reported.acked.is_subset(&reported.acking), || {
        "the child reported acks done it never reported started".to_owned()
    });
    // A message the worker received was stored, even when the kill came
    // between its publish returning and the child printing so.
    let received: Vec<usize> = reported.acking.iter().copied().collect();
    reported.published.extend(received);
    match ctx
        .bounded("reopening the backend after the kill", backend.run_reopen())
        .await
    {
        Some(Ok(())) => {}
        Some(Err(e)) => ctx.fail(format!("reopening the backend after the kill: {e}")),
        None => ctx.fail("no reopen hook, although the scenario was not skipped"),
    }
    check_after_kill(ctx, &topic, &reported).await;
    println!(
        "[{}] durable_across_restart: child killed after {} published / {} acked; nothing lost after reopening",
        backend.name(),
        reported.published.len(),
        reported.acked.len()
    );
}

/// The audit group gets every published message; the worker group every
/// published one whose ack the child had not started, and none whose ack
/// had returned Ok (an ack cut short by the kill may have landed or not).
async fn check_after_kill(ctx: &Ctx<'_>, topic: &str, reported: &Reported) {
    let subscriber = ctx.subscriber().await;
    let options = SubscribeOptions::group(AUDIT).max_in_flight(1000);
    let mut audit = ctx.subscribe(&*subscriber, topic, options).await;
    let mut missing = reported.published.clone();
    let mut seen = BTreeSet::new();
    while !missing.is_empty() {
        let n = take(ctx, &mut audit, || {
            format!(
                "the audit group: {} published messages not delivered after the kill, e.g. {:?}",
                missing.len(),
                missing.first()
            )
        })
        .await;
        ctx.check(seen.insert(n), || {
            format!("message {n} delivered twice to the audit group")
        });
        missing.remove(&n);
    }
    let options = SubscribeOptions::group(WORKER)
        .max_in_flight(1000)
        .ack_deadline(Duration::from_secs(1));
    let mut worker = ctx.subscribe(&*subscriber, topic, options).await;
    let mut missing: BTreeSet<usize> = reported
        .published
        .difference(&reported.acking)
        .copied()
        .collect();
    while !missing.is_empty() {
        let n = take(ctx, &mut worker, || {
            format!(
                "the worker group: {} unacknowledged messages not delivered again after the kill",
                missing.len()
            )
        })
        .await;
        ctx.check(!reported.acked.contains(&n), || {
            format!("message {n} was acknowledged before the kill, yet delivered again")
        });
        missing.remove(&n);
    }
    // What is left (published just before the kill, leases of the dead
    // child, which come back after its ack deadline) must not hold an
    // acknowledged message either.
    let window = CHILD_ACK_DEADLINE + Duration::from_millis(500);
    while let Ok(Some(Ok(delivery))) = tokio::time::timeout(window, worker.next()).await {
        let n = number_of(delivery.message()).unwrap_or(usize::MAX);
        ctx.check(!reported.acked.contains(&n), || {
            format!("message {n} was acknowledged before the kill, yet delivered again")
        });
        tokio::spawn(delivery.ack());
    }
}

/// The next delivery's number, acknowledged in the background (the acks
/// share commits).
async fn take(
    ctx: &Ctx<'_>,
    subscription: &mut Subscription,
    waiting: impl Fn() -> String,
) -> usize {
    let delivery = ctx.next(subscription, waiting()).await;
    let n = number_of(delivery.message())
        .unwrap_or_else(|| ctx.fail(format!("{}: an unnumbered message", waiting())));
    tokio::spawn(delivery.ack());
    n
}
