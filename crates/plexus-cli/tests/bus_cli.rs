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
