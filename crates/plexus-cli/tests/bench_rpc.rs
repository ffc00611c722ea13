//! Smoke test of `plexus bench rpc --quick`: it runs every scenario on both
//! stacks and writes a complete JSON report. Speed is never asserted here.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long the quick run may take, even on a loaded debug build.
const RUN_LIMIT: Duration = Duration::from_secs(180);

fn positive(value: &Value, what: &str) -> f64 {
    let number = value
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {value}"));
    assert!(
        number.is_finite() && number > 0.0,
        "{what} is {number}, expected > 0"
    );
    number
}

#[test]
fn quick_run_reports_every_scenario_on_both_stacks() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("rpc.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_plexus"))
        .args(["bench", "rpc", "--quick", "--json"])
        .arg(&json)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            panic!("plexus bench rpc --quick still running after {RUN_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "plexus bench rpc --quick failed: {status}"
    );

    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["bench"], "rpc");
    positive(&report["machine"]["cores"], "machine.cores");
    assert!(report["machine"]["timestamp_unix"].as_u64().unwrap() > 0);
    assert!(report["all_floors_hold"].is_boolean());

    let rows = report["scenarios"].as_array().unwrap();
    let seen: BTreeSet<(String, u64, u64)> = rows
        .iter()
        .map(|row| {
            let scenario = row["scenario"].as_str().unwrap().to_owned();
            let key = format!("{scenario} c={} {} B", row["concurrency"], row["payload_bytes"]);
            for stack in ["plexus", "bare"] {
                let figures = &row[stack];
                let throughput = positive(&figures["throughput"], &format!("{key} {stack} throughput"));
                let p50 = positive(&figures["p50_us"], &format!("{key} {stack} p50"));
                let p99 = positive(&figures["p99_us"], &format!("{key} {stack} p99"));
                assert!(p99 >= p50, "{key} {stack}: p99 {p99} below p50 {p50}");
                let messages_per_call = row["messages_per_call"].as_f64().unwrap();
                let calls_per_sec = positive(&figures["calls_per_sec"], &format!("{key} {stack} calls/s"));
                let expected = calls_per_sec * messages_per_call;
                assert!(
                    (throughput - expected).abs() <= expected * 1e-9,
                    "{key} {stack}: throughput {throughput} is not calls/s × messages per call ({expected})"
                );
                let rounds = figures["rounds"].as_array().unwrap();
                assert_eq!(rounds.len(), 1, "{key} {stack}: --quick runs one round");
                positive(&rounds[0]["calls"], &format!("{key} {stack} calls"));
            }
            positive(&row["ratio"]["throughput"], &format!("{key} throughput ratio"));
            assert!(row["ratio"]["p50_diff_us"].as_f64().unwrap().is_finite());
            (
                scenario,
                row["concurrency"].as_u64().unwrap(),
                row["payload_bytes"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, u64, u64)> = [
        ("unary", 1, 64),
        ("unary", 64, 64),
        ("unary", 1, 4096),
        ("unary", 64, 4096),
        ("server-stream", 1, 64),
        ("server-stream", 64, 64),
    ]
    .into_iter()
    .map(|(s, c, p)| (s.to_owned(), c, p))
    .collect();
    assert_eq!(seen, expected);
    assert_eq!(rows.len(), expected.len(), "a scenario is reported twice");
}
