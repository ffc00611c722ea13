//! A process publishing and acknowledging is killed with SIGKILL mid-
//! stream; after reopening the database nothing whose publish returned Ok
//! is lost, and nothing whose ack returned Ok is delivered to that group
//! again.
//!
//! The child is this test binary run again (`crash_child`, ignored in
//! normal runs) with the database path in `PLEXUS_SQLITE_CRASH_DB`.

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use plexus_core::Message;
use plexus_core::bus::{Publisher, SubscribeOptions, Subscriber};
use plexus_sqlite::SqliteBus;

const DB_VAR: &str = "PLEXUS_SQLITE_CRASH_DB";
const PUBLISHERS: usize = 4;
const BATCH: usize = 10;
/// Batches each publisher of the child sends at most.
const MAX_BATCHES: usize = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child half of `nothing_acknowledged_is_lost_when_the_process_is_killed`, run by it"]
async fn crash_child() {
    let Ok(path) = std::env::var(DB_VAR) else {
        panic!("run by the crash test with {DB_VAR} set");
    };
    let bus = SqliteBus::open(&path).await.unwrap();
    let mut worker = bus
        .subscribe(
            "crash",
            SubscribeOptions::group("worker")
                .from_earliest()
                .ack_deadline(Duration::from_secs(2)),
        )
        .await
        .unwrap();
    let _audit = bus
        .subscribe("crash", SubscribeOptions::group("audit").from_earliest())
        .await
        .unwrap();
    println!("ready");
    // Publishers stay at most `AHEAD` messages ahead of the acks, so the
    // kill finds both publishing and acking under way.
    const AHEAD: usize = 300;
    let (acked_count, acked_watch) = tokio::sync::watch::channel(0usize);
    let published = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for p in 0..PUBLISHERS {
        let bus = bus.clone();
        let mut acked_watch = acked_watch.clone();
        let published = std::sync::Arc::clone(&published);
        tokio::spawn(async move {
            for b in 0..MAX_BATCHES {
                let sent = published.fetch_add(BATCH, std::sync::atomic::Ordering::AcqRel);
                acked_watch
                    .wait_for(|acked| sent <= acked + AHEAD)
                    .await
                    .unwrap();
                let batch = (0..BATCH)
                    .map(|i| {
                        Message::builder("crash.event", "/crash")
                            .id(format!("p{p}-b{b}-{i}"))
                            .key(format!("k{}", i % 5))
                            .build()
                            .unwrap()
                    })
                    .collect();
                bus.publish("crash", batch).await.unwrap();
                // Printed only once the publish returned Ok.
                println!("published p{p}-b{b}");
            }
        });
    }
    while let Some(delivery) = worker.next().await {
        let delivery = delivery.unwrap();
        let id = delivery.message().id().to_owned();
        delivery.ack().await.unwrap();
        println!("acked {id}");
        acked_count.send_modify(|count| *count += 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_acknowledged_is_lost_when_the_process_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DB_VAR, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines, received) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });

    let mut published = HashSet::new();
    let mut acked = HashSet::new();
    let note = |line: String, published: &mut HashSet<String>, acked: &mut HashSet<String>| {
        if let Some(batch) = line.strip_prefix("published ") {
            for i in 0..BATCH {
                published.insert(format!("{batch}-{i}"));
            }
        } else if let Some(id) = line.strip_prefix("acked ") {
            acked.insert(id.to_owned());
        }
    };
    let give_up = Instant::now() + Duration::from_secs(60);
    while published.len() < 800 || acked.len() < 300 {
        let left = give_up.saturating_duration_since(Instant::now());
        match received.recv_timeout(left) {
            Ok(line) => note(line, &mut published, &mut acked),
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "the child did not get far enough within 60 s: {} published, {} acked",
                    published.len(),
                    acked.len()
                );
            }
        }
    }
    child.kill().unwrap(); // SIGKILL, mid-stream
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child was killed");
    reader.join().unwrap();
    // Lines the child wrote before it died.
    for line in received.try_iter() {
        note(line, &mut published, &mut acked);
    }
    assert!(
        acked.is_subset(&published),
        "only published messages were acked"
    );

    let bus = SqliteBus::open(&path).await.unwrap();
    let wait = Duration::from_secs(30);
    // The audit group never consumed: every published message is there.
    let mut audit = bus
        .subscribe(
            "crash",
            SubscribeOptions::group("audit").max_in_flight(1000),
        )
        .await
        .unwrap();
    let mut audited = HashSet::new();
    let mut missing = published.clone();
    while !missing.is_empty() {
        let delivery = tokio::time::timeout(wait, audit.next())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{} published messages lost, e.g. {:?}",
                    missing.len(),
                    missing.iter().next()
                )
            })
            .unwrap()
            .unwrap();
        let id = delivery.message().id().to_owned();
        assert!(audited.insert(id.clone()), "{id} delivered twice to audit");
        missing.remove(&id);
        // Acked concurrently: the acks share commits.
        tokio::spawn(delivery.ack());
    }
    // The worker group: the published messages it had not acknowledged,
    // and none it had.
    let mut worker = bus
        .subscribe(
            "crash",
            SubscribeOptions::group("worker")
                .max_in_flight(1000)
                .ack_deadline(Duration::from_secs(1)),
        )
        .await
        .unwrap();
    let mut missing: HashSet<_> = published.difference(&acked).cloned().collect();
    loop {
        let next = if missing.is_empty() {
            // Drain what is left (messages published just before the kill,
            // leases of the dead process) to check none was acked.
            match tokio::time::timeout(Duration::from_millis(1500), worker.next()).await {
                Ok(next) => next,
                Err(_) => break,
            }
        } else {
            tokio::time::timeout(wait, worker.next())
                .await
                .unwrap_or_else(|_| {
                    panic!("{} unacknowledged messages not redelivered", missing.len())
                })
        };
        let delivery = next.unwrap().unwrap();
        let id = delivery.message().id().to_owned();
        assert!(
            !acked.contains(&id),
            "{id} was acknowledged before the kill, yet delivered again"
        );
        missing.remove(&id);
        tokio::spawn(delivery.ack());
    }
    println!(
        "killed after {} published / {} acked; all found after reopening",
        published.len(),
        acked.len()
    );
}
