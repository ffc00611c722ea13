//! `plexus pub` / `plexus sub`: URLs, arguments and their errors.

use std::process::Command;

fn plexus(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_plexus"))
        .args(args)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn pub_prints_the_message_id() {
    let (ok, out, err) = plexus(&[
        "pub",
        "memory:",
        "orders",
        "--key",
        "k",
        "--data",
        r#"{"a":1}"#,
    ]);
    assert!(ok, "{err}");
    let id = out.trim();
    assert_eq!(id.len(), 36, "a UUID: {out}");
}

#[test]
fn unknown_schemes_and_bad_headers_are_refused_clearly() {
    let (ok, _, err) = plexus(&["pub", "rabbit://localhost", "orders", "--data", "x"]);
    assert!(!ok);
    assert!(err.contains("unknown bus scheme `rabbit:`"), "{err}");
    assert!(err.contains("`memory:`"), "{err}");
    let (ok, _, err) = plexus(&["pub", "memory:", "orders", "-H", "novalue"]);
    assert!(!ok);
    assert!(
        err.contains("header `novalue` is not `name=value`"),
        "{err}"
    );
    let (ok, _, err) = plexus(&["pub", "memory:", "bad topic", "--data", "x"]);
    assert!(!ok);
    assert!(err.contains("invalid topic"), "{err}");
    let (ok, _, err) = plexus(&["sub", "memory:", "orders", "--group", ""]);
    assert!(!ok);
    assert!(err.contains("group"), "{err}");
}

#[test]
fn a_message_published_by_one_process_is_printed_by_another_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bus.db").display());
    // The group starts at the earliest message, so the order of the two
    // processes does not matter.
    let (ok, id, err) = plexus(&[
        "pub",
        &url,
        "orders",
        "--key",
        "ord-1",
        "--type",
        "shop.OrderPlaced",
        "-H",
        "tenant=t1",
        "--data",
        r#"{"orderId":"ord-1"}"#,
    ]);
    assert!(ok, "{err}");
    let (ok, out, err) = plexus(&[
        "sub", &url, "orders", "--group", "cli", "--from", "earliest", "--count", "1",
    ]);
    assert!(ok, "{err}");
    let event: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(event["id"], id.trim());
    assert_eq!(event["type"], "shop.OrderPlaced");
    assert_eq!(event["partitionkey"], "ord-1");
    assert_eq!(event["headers"]["tenant"], "t1");
    assert_eq!(event["data"]["orderId"], "ord-1");
    assert_eq!(event["datacontenttype"], "application/json");
    // Acknowledged: the group has nothing left.
    let (ok, out, err) = plexus(&["pub", &url, "orders", "--data", "second"]);
    assert!(ok, "{err}");
    let second = out.trim().to_owned();
    let (ok, out, _) = plexus(&["sub", &url, "orders", "--group", "cli", "--count", "1"]);
    assert!(ok);
    let event: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(event["id"], second, "the first message was delivered again");
    assert_eq!(event["data"], "second");
}
