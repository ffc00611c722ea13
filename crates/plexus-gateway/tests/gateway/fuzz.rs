//! Fuzz-style: at least 10,000 random and mutated bodies, seeded so a
//! failure reproduces. No panic, no 5xx for a client mistake, and a good
//! request still succeeds afterwards.

use std::sync::atomic::Ordering;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::support::start;

const BODIES: usize = 10_000;
const SEED: u64 = 0x5eed_9a7e;

/// Valid bodies of the two body-taking routes, to mutate.
const SEEDS: [&str; 4] = [
    r#"{"title": "Dune", "author": {"name": "Herbert", "born": 1920}, "pages": 412, "isbn": "9780441013593", "genre": "GENRE_FICTION", "tags": ["sf", "classic"], "cover": "AQID", "published": "1965-08-01T00:00:00Z", "labels": {"k": "v"}, "rating": 4.5, "inPrint": true}"#,
    r#"{"title": "", "tags": [], "labels": {}, "subtitle": "x"}"#,
    r#"{"code": 0, "message": "fine"}"#,
    r#"{}"#,
];

const TOKENS: [&str; 24] = [
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "null",
    "true",
    "false",
    "-0",
    "1e999",
    "18446744073709551616",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "NaN",
    "\"Infinity\"",
    "\"title\"",
    "\"pages\"",
    "\"author\"",
    "\"tags\"",
    "{\"a\":",
    "\u{feff}",
    "\"GENRE_FICTION\"",
];

fn mutate(rng: &mut StdRng, seed: &str) -> Vec<u8> {
    let mut bytes = seed.as_bytes().to_vec();
    for _ in 0..rng.random_range(1..6) {
        let at = if bytes.is_empty() {
            0
        } else {
            rng.random_range(0..bytes.len())
        };
        match rng.random_range(0..6) {
            0 if !bytes.is_empty() => {
                bytes.remove(at);
            }
            1 => bytes.insert(at, rng.random()),
            2 => {
                let token = TOKENS[rng.random_range(0..TOKENS.len())];
                bytes.splice(at..at, token.bytes());
            }
            3 if !bytes.is_empty() => bytes[at] = rng.random(),
            4 => bytes.truncate(at),
            _ => {
                let end = (at + rng.random_range(0..8)).min(bytes.len());
                let piece: Vec<u8> = bytes[at..end].to_vec();
                bytes.splice(at..at, piece);
            }
        }
    }
    bytes
}

fn random_json(rng: &mut StdRng, depth: u32) -> serde_json::Value {
    use serde_json::Value;
    match rng.random_range(0..if depth > 3 { 4 } else { 7 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.random()),
        2 => serde_json::json!(rng.random::<i64>()),
        3 => Value::String(
            ["Dune", "GENRE_HISTORY", "AQID", "2020-01-01T00:00:00Z", ""][rng.random_range(0..5)]
                .to_owned(),
        ),
        4 => Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| random_json(rng, depth + 1))
                .collect(),
        ),
        _ => {
            let keys = [
                "title",
                "pages",
                "author",
                "name",
                "born",
                "tags",
                "isbn",
                "genre",
                "labels",
                "cover",
                "published",
                "rating",
                "in_print",
                "inPrint",
                "code",
                "message",
                "bogus",
            ];
            Value::Object(
                (0..rng.random_range(0..5))
                    .map(|_| {
                        (
                            keys[rng.random_range(0..keys.len())].to_owned(),
                            random_json(rng, depth + 1),
                        )
                    })
                    .collect(),
            )
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_bad_bodies_get_4xx_and_the_gateway_keeps_serving() {
    let h = start().await;
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
    for i in 0..BODIES {
        let (path, body) = if i % 2 == 0 {
            let seed = SEEDS[rng.random_range(0..SEEDS.len())];
            let path = if seed.contains("code") {
                "/v1/fail"
            } else {
                "/v1/shelves/s/books"
            };
            (path, mutate(&mut rng, seed))
        } else {
            let path = if rng.random() {
                "/v1/fail"
            } else {
                "/v1/shelves/s/books"
            };
            (
                path,
                serde_json::to_vec(&random_json(&mut rng, 0)).expect("json"),
            )
        };
        let calls_before = h.library.calls.load(Ordering::SeqCst);
        let reply = h
            .http
            .send("POST", path, &[("content-type", "application/json")], &body)
            .await;
        let reached_upstream = h.library.calls.load(Ordering::SeqCst) > calls_before;
        let status = reply.status.as_u16();
        *by_status.entry(status).or_default() += 1;
        // A body the gateway accepts reaches the service (which answers
        // /v1/fail with the status it is asked for); one it refuses is a 400.
        let ok = if reached_upstream {
            status == 200 || path == "/v1/fail"
        } else {
            status == 400
        };
        assert!(
            ok,
            "body #{i} (seed {SEED:#x}) to {path}: {status} {} (reached upstream: {reached_upstream})\n{}",
            reply.text(),
            String::from_utf8_lossy(&body)
        );
        if status == 400 {
            let error = reply.json();
            assert_eq!(error["code"], "INVALID_ARGUMENT", "{error}");
            assert!(
                !error["message"].as_str().unwrap_or("").is_empty(),
                "{error}"
            );
        }
    }
    assert!(
        by_status.get(&400).copied().unwrap_or(0) > BODIES / 4,
        "{by_status:?}"
    );
    let good = h.http.json("POST", "/v1/shelves/s/books", SEEDS[0]).await;
    assert_eq!(good.status, 200, "{}", good.text());
    assert_eq!(good.json()["title"], "Dune");
}
