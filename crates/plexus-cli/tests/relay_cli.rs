//! `plexus relay`: relays what is already in the source topic, stops
//! cleanly on SIGTERM with its totals, and refuses bad input clearly.

mod support;

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, BufReader};

#[tokio::test]
async fn relays_what_the_source_holds_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let from = format!("sqlite://{}", dir.path().join("orders.db").display());
    let to = format!("sqlite://{}", dir.path().join("events.db").display());
    for n in 0..3 {
        let data = format!("{{\"n\":{n}}}");
        let run = support::plexus(&["pub", &from, "orders", "--data", &data]).await;
        assert_eq!(run.code, Some(0), "{run:?}");
    }
    let mut relay = tokio::process::Command::new(env!("CARGO_BIN_EXE_plexus"))
        .args(["relay", &from, "orders", &to, "--to-topic", "placed"])
        .args(["--report-every", "50ms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(relay.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().unwrap();
    assert!(
        first.starts_with("relaying orders from sqlite://"),
        "{first}"
    );
    // The figures line reports all three once they are relayed.
    let relayed = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let line = lines.next_line().await.unwrap().expect("a figures line");
            if line.starts_with("relayed 3 messages") {
                return line;
            }
        }
    })
    .await
    .expect("the three messages relayed");
    assert!(relayed.contains("lag p50"), "{relayed}");
    let pid = relay.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(30), relay.wait())
        .await
        .expect("the relay stops on SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
    let mut rest = Vec::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        rest.push(line);
    }
    assert!(
        rest.iter().any(|l| l.starts_with("stopped: 3 relayed")),
        "{rest:?}"
    );
    // At the destination, under the other topic name.
    let run = support::plexus(&["sub", &to, "placed", "--from", "earliest", "--count", "3"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.lines().len(), 3, "{run:?}");
}

#[tokio::test]
async fn bad_input_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let to = format!("sqlite://{}", dir.path().join("events.db").display());
    let run = support::plexus(&["relay", "bogus://x", "orders", &to]).await;
    assert_ne!(run.code, Some(0));
    assert!(
        run.stderr.contains("unknown bus scheme `bogus:`"),
        "{run:?}"
    );
    let run = support::plexus(&["relay", &to, "orders", &to, "--ack-deadline", "soon"]).await;
    assert_ne!(run.code, Some(0));
    assert!(run.stderr.contains("`soon` is not a duration"), "{run:?}");
    let run = support::plexus(&["relay", &to, "orders", &to, "--report-every", "1ms"]).await;
    assert_ne!(run.code, Some(0));
    assert!(run.stderr.contains("--report-every"), "{run:?}");
}
