//! Smoke test of `plexus bench bus --quick` on both embedded backends: it
//! runs every row and the curve and writes a complete JSON report. Speed
//! is never asserted here.

use std::process::Command;

use serde_json::Value;

fn quick(backend: &str, extra: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bus.json");
    let output = Command::new(env!("CARGO_BIN_EXE_plexus"))
        .args([
            "bench",
            "bus",
            "--backend",
            backend,
            "--quick",
            "--messages",
            "2000",
        ])
        .args(extra)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "plexus bench bus --backend {backend} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap()
}

fn check(report: &Value, backend: &str, floors: usize, curve: &[u64]) {
    assert_eq!(report["bench"], "bus");
    assert_eq!(report["backend"], backend);
    assert_eq!(report["messages"], 2000);
    let rows = report["rows"].as_array().unwrap();
    let shapes: Vec<(u64, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["payload_bytes"].as_u64().unwrap(),
                r["publishers"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(shapes, [(64, 1), (64, 16), (1024, 1), (1024, 16)]);
    for row in rows {
        for side in ["plexus", "baseline"] {
            let figures = &row[side];
            assert!(
                figures["throughput"].as_f64().unwrap() > 0.0,
                "{side}: {row}"
            );
            let (p50, p99) = (
                figures["p50_us"].as_f64().unwrap(),
                figures["p99_us"].as_f64().unwrap(),
            );
            assert!(p50 > 0.0 && p99 >= p50, "{side}: {row}");
        }
        assert!(row["ratio"].as_f64().unwrap() > 0.0);
    }
    let points: Vec<u64> = report["curve"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["publishers"].as_u64().unwrap())
        .collect();
    assert_eq!(points, curve);
    assert_eq!(report["floors"].as_array().unwrap().len(), floors);
    assert!(report["all_floors_hold"].is_boolean());
}

#[test]
fn quick_memory_run_reports_every_row_and_the_curve() {
    let report = quick("memory", &[]);
    assert_eq!(report["control"], false);
    check(&report, "memory", 1, &[1, 2, 4, 8, 16]);
}

#[test]
fn a_control_run_measures_the_baseline_in_place_of_plexus() {
    let report = quick("memory", &["--control"]);
    assert_eq!(report["control"], true);
    // No plexus curve: nothing of plexus runs.
    check(&report, "memory", 1, &[]);
}

#[test]
fn quick_sqlite_run_reports_every_row_and_the_curve() {
    check(&quick("sqlite", &[]), "sqlite", 2, &[1, 2, 4, 8, 16]);
}
