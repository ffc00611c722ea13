//! Smoke test of `plexus bench http --quick`: it runs every scenario at
//! every payload and concurrency, the codec micro-benchmark, and writes a
//! complete JSON report. Speed is never asserted here.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long the quick run may take, even on a loaded debug build.
const RUN_LIMIT: Duration = Duration::from_secs(180);

const SCENARIOS: [&str; 5] = ["gateway", "grpc", "axum", "plexus-http", "http-hop"];

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

fn run_quick(json: &std::path::Path) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_plexus"))
        .args(["bench", "http", "--quick", "--json"])
        .arg(json)
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
            panic!("plexus bench http --quick still running after {RUN_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "plexus bench http --quick failed: {status}"
    );
}

#[test]
fn quick_run_reports_every_scenario_payload_and_codec() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("http.json");
    run_quick(&json);

    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["bench"], "http");
    positive(&report["machine"]["cores"], "machine.cores");
    assert!(report["all_floors_hold"].is_boolean());
    assert_eq!(report["floors"]["gateway_p50_factor"], 1.3);
    assert_eq!(report["floors"]["min_plexus_http_throughput_ratio"], 0.95);

    let rows = report["scenarios"].as_array().unwrap();
    let mut seen = BTreeSet::new();
    for row in rows {
        let payload = row["payload"].as_str().unwrap().to_owned();
        let concurrency = row["concurrency"].as_u64().unwrap();
        let key = format!("{payload} c={concurrency}");
        let protobuf = positive(&row["protobuf_request_bytes"], &key);
        let json = positive(&row["json_request_bytes"], &key);
        assert!(
            json > protobuf,
            "{key}: JSON {json} B, protobuf {protobuf} B"
        );
        let results = row["results"].as_array().unwrap();
        let names: Vec<&str> = results
            .iter()
            .map(|r| r["scenario"].as_str().unwrap())
            .collect();
        assert_eq!(names, SCENARIOS, "{key}");
        for result in results {
            let what = format!("{key} {}", result["scenario"]);
            positive(&result["throughput"], &format!("{what} throughput"));
            let p50 = positive(&result["p50_us"], &format!("{what} p50"));
            let p99 = positive(&result["p99_us"], &format!("{what} p99"));
            assert!(p99 >= p50, "{what}: p99 {p99} below p50 {p50}");
            let bytes = &result["bytes_per_call"];
            let sent = positive(&bytes["sent"], &format!("{what} bytes sent"));
            let received = positive(&bytes["received"], &format!("{what} bytes received"));
            let total = positive(&bytes["total"], &format!("{what} bytes"));
            assert!((sent + received - total).abs() < 1e-6, "{what}: {bytes}");
            let rounds = result["rounds"].as_array().unwrap();
            assert_eq!(rounds.len(), 1, "{what}: --quick runs one round");
            positive(&rounds[0]["calls"], &format!("{what} calls"));
            let upstream = &result["upstream_bytes_per_call"];
            if result["scenario"] == "gateway" {
                positive(&upstream["total"], &format!("{what} upstream bytes"));
            } else {
                assert!(upstream.is_null(), "{what}: {upstream}");
            }
        }
        let gateway = &row["gateway_p50"];
        for field in ["gateway_p50_us", "grpc_p50_us", "hop_p50_us", "bound_us"] {
            positive(&gateway[field], &format!("{key} {field}"));
        }
        assert!(gateway["margin_us"].as_f64().unwrap().is_finite());
        if concurrency == 1 {
            assert!(gateway["holds"].is_boolean(), "{key}: {gateway}");
        } else {
            assert!(gateway["holds"].is_null(), "{key}: {gateway}");
        }
        positive(
            &row["plexus_http_throughput"]["ratio"],
            &format!("{key} ratio"),
        );
        assert!(row["plexus_http_throughput"]["holds"].is_boolean());
        seen.insert((payload, concurrency));
    }
    let expected: BTreeSet<(String, u64)> =
        [("small", 1), ("small", 64), ("1KiB", 1), ("1KiB", 64)]
            .into_iter()
            .map(|(p, c)| (p.to_owned(), c))
            .collect();
    assert_eq!(seen, expected);
    assert_eq!(rows.len(), expected.len(), "a row is reported twice");

    let codec = &report["codec"];
    let mut measured = BTreeSet::new();
    for row in codec["rows"].as_array().unwrap() {
        let what = format!("{} {}", row["message"], row["codec"]);
        positive(&row["bytes"], &format!("{what} bytes"));
        positive(&row["encode_ns"], &format!("{what} encode"));
        positive(&row["decode_ns"], &format!("{what} decode"));
        measured.insert((
            row["message"].as_str().unwrap().to_owned(),
            row["codec"].as_str().unwrap().to_owned(),
        ));
    }
    let mut expected = BTreeSet::new();
    for message in ["QuoteRequest", "QuoteReply"] {
        for size in ["small", "1KiB"] {
            for codec in [
                "protobuf",
                "protobuf-dynamic",
                "json",
                "json-dynamic",
                "json-gateway",
            ] {
                expected.insert((format!("{message} {size}"), codec.to_owned()));
            }
        }
    }
    assert_eq!(measured, expected);
    assert_eq!(codec["comparisons"].as_array().unwrap().len(), 4);
    assert!(codec["protobuf_smaller"].is_boolean());
    assert!(codec["protobuf_faster"].is_boolean());
}
