//! Smoke test of `plexus bench outbox` on SQLite with the in-memory
//! destination, tiny counts and one round: it runs the three measurements
//! and writes a complete JSON report. Speed is never asserted here, nor
//! whether the floors hold.

use std::process::Command;

use serde_json::Value;

fn run(dir: &std::path::Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_plexus"))
        .current_dir(dir)
        .args(["bench", "outbox"])
        .args(extra)
        .output()
        .unwrap()
}

fn positive(value: &Value, what: &str) {
    let number = value
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {value}"));
    assert!(number > 0.0 && number.is_finite(), "{what} = {number}");
}

#[test]
fn a_tiny_sqlite_run_reports_the_three_measurements() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(
        dir.path(),
        &[
            "--source",
            "sqlite",
            "--to",
            "memory:",
            "--rounds",
            "1",
            "--transactions",
            "20",
            "--messages",
            "300",
            "--rate",
            "100",
            "--duration",
            "500ms",
        ],
    );
    assert!(
        output.status.success(),
        "plexus bench outbox failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("all floors hold:"), "{stdout}");
    // The default file, in the working directory.
    let json = dir.path().join("bench-results/outbox-sqlite.json");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["bench"], "outbox");
    assert_eq!(report["source"], "sqlite");
    assert_eq!(report["destination"], "memory:");
    assert_eq!(report["settings"]["rounds"], 1);

    let transactions = &report["transactions"];
    for side in ["with_outbox", "without_outbox"] {
        for figure in ["p50_us", "p99_us", "mean_us", "per_sec"] {
            positive(&transactions[side][figure], &format!("{side}.{figure}"));
        }
    }
    assert_eq!(transactions["with_rounds"].as_array().unwrap().len(), 1);
    assert_eq!(transactions["with_rounds"][0]["transactions"], 20);
    positive(&transactions["p50_ratio"]["median"], "p50 ratio");

    let relay = &report["relay"];
    positive(&relay["relay_per_sec"], "relay msg/s");
    positive(&relay["raw_per_sec"], "raw msg/s");
    positive(&relay["ratio"]["median"], "relay ratio");
    assert_eq!(relay["relay_rounds"][0]["messages"], 300);

    let lag = &report["lag"];
    for figure in [
        "p50_us",
        "p99_us",
        "max_us",
        "achieved_rate",
        "commit_p50_us",
        "commit_p99_us",
    ] {
        positive(&lag[figure], &format!("lag.{figure}"));
    }
    positive(&lag["rounds"][0]["committed"], "events committed");

    let floors = report["floors"].as_array().unwrap();
    assert_eq!(floors.len(), 3);
    // The lag's floor is judged on PostgreSQL only.
    assert!(floors[2]["holds"].is_null(), "{}", floors[2]);
    assert!(report["all_floors_hold"].is_boolean());
}

#[test]
fn bad_flags_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(
        dir.path(),
        &["--source", "sqlite", "--postgres", "postgres://x@h/db"],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--postgres is for --source postgres"),
        "{stderr}"
    );

    let output = run(dir.path(), &["--postgres", "postgres://x@h/db?schema=mine"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("leave out `schema=`"), "{stderr}");

    let output = run(
        dir.path(),
        &["--source", "sqlite", "--to", "carrier-pigeon:"],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown bus scheme"), "{stderr}");

    let output = run(dir.path(), &["--rounds", "0"]);
    assert!(!output.status.success());
    assert!(!dir.path().join("bench-results").exists());
}
