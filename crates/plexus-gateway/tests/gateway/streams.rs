//! Server streaming as Server-Sent Events and as NDJSON.

use std::sync::atomic::Ordering;

use http_body_util::BodyExt;
use plexus_gateway::GatewayConfig;
use serde_json::{Value as Json, json};

use crate::support::{PROMPT, start, start_with};

/// The events of an SSE body: (event name, data as JSON).
fn sse_events(text: &str) -> Vec<(String, Json)> {
    text.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut event = "message".to_owned();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(name) = line.strip_prefix("event: ") {
                    event = name.to_owned();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                } else {
                    panic!("unexpected SSE line {line:?} in {text:?}");
                }
            }
            let data = serde_json::from_str(&data).unwrap_or_else(|e| panic!("{e}: {data}"));
            (event, data)
        })
        .collect()
}

#[tokio::test]
async fn a_stream_is_server_sent_events_by_default() {
    let h = start().await;
    let reply = h.http.get("/v1/shelves/s1:watch?count=3").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("text/event-stream"));
    assert_eq!(reply.header("cache-control"), Some("no-cache"));
    let events = sse_events(&reply.text());
    let expected: Vec<(String, Json)> = (0..3)
        .map(|i| {
            let mut book = json!({ "name": format!("shelves/s1/books/{i}") });
            if i > 0 {
                book["pages"] = json!(i);
            }
            ("message".to_owned(), book)
        })
        .collect();
    assert_eq!(events, expected);
}

#[tokio::test]
async fn a_failing_stream_ends_with_an_error_event() {
    let h = start().await;
    let reply = h.http.get("/v1/shelves/s1:watch?count=5&failAfter=2").await;
    assert_eq!(reply.status, 200);
    let events = sse_events(&reply.text());
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(events[0].0, "message");
    assert_eq!(events[1].0, "message");
    assert_eq!(
        events[2],
        (
            "error".to_owned(),
            json!({"code": "ABORTED", "message": "the shelf was reorganised", "details": []})
        )
    );
}

#[tokio::test]
async fn a_stream_refused_before_it_starts_gets_the_http_status() {
    let h = start().await;
    let reply = h.http.get("/v1/shelves/missing:watch?count=5").await;
    reply.assert_error(404, "NOT_FOUND", &["shelf missing"]);
}

#[tokio::test]
async fn ndjson_when_the_client_asks_for_it() {
    let h = start().await;
    let reply = h
        .http
        .send(
            "GET",
            "/v1/shelves/s2:watch?count=4&failAfter=3",
            &[("accept", "application/x-ndjson")],
            b"",
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/x-ndjson"));
    let text = reply.text();
    assert!(text.ends_with('\n'), "{text:?}");
    let lines: Vec<Json> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(lines[2], json!({"name": "shelves/s2/books/2", "pages": 2}));
    assert_eq!(
        lines[3],
        json!({"error": {"code": "ABORTED", "message": "the shelf was reorganised", "details": []}})
    );
}

#[tokio::test]
async fn a_stream_past_its_deadline_ends_with_deadline_exceeded() {
    let h = start().await;
    let reply = h
        .http
        .send(
            "GET",
            "/v1/shelves/s:watch?count=1000&intervalMillis=20",
            &[("plexus-timeout-ms", "300")],
            b"",
        )
        .await;
    assert_eq!(reply.status, 200);
    let events = sse_events(&reply.text());
    let (last, data) = events.last().expect("events");
    assert_eq!(last, "error");
    assert_eq!(data["code"], "DEADLINE_EXCEEDED", "{data}");
    assert!(
        events.len() > 2 && events.len() < 1000,
        "{} events",
        events.len()
    );
}

#[tokio::test]
async fn a_client_that_goes_away_cancels_the_upstream_stream() {
    let h = start().await;
    let response = h
        .http
        .open(
            "GET",
            "/v1/shelves/s:watch?count=100000&intervalMillis=5",
            &[],
            b"",
        )
        .await;
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let first = tokio::time::timeout(PROMPT, body.frame())
        .await
        .expect("a first event in time")
        .expect("a frame")
        .expect("no error");
    assert!(first.into_data().is_ok_and(|d| d.starts_with(b"data: ")));
    drop(body);
    let closed = &h.library.streams_closed;
    let deadline = tokio::time::Instant::now() + PROMPT;
    while closed.load(Ordering::SeqCst) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the upstream producer still runs {PROMPT:?} after the client left"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn open_streams_are_bounded() {
    let mut config = GatewayConfig::default();
    config.max_concurrent_streams = 1;
    let h = start_with(config).await;
    let open = h
        .http
        .open(
            "GET",
            "/v1/shelves/s:watch?count=100000&intervalMillis=50",
            &[],
            b"",
        )
        .await;
    assert_eq!(open.status(), 200);
    let refused = h.http.get("/v1/shelves/s:watch?count=1").await;
    refused.assert_error(503, "UNAVAILABLE", &["limit of 1 streams"]);
    drop(open);
    // The slot comes back once the first stream's body is dropped.
    let deadline = tokio::time::Instant::now() + PROMPT;
    loop {
        let reply = h.http.get("/v1/shelves/s:watch?count=1").await;
        if reply.status == 200 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{}", reply.text());
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn shutdown_ends_open_streams_with_an_error_event() {
    let h = start().await;
    let response = h
        .http
        .open(
            "GET",
            "/v1/shelves/s:watch?count=100000&intervalMillis=20",
            &[],
            b"",
        )
        .await;
    let reader = tokio::spawn(async move {
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        String::from_utf8_lossy(&bytes).into_owned()
    });
    tokio::time::timeout(PROMPT, h.gateway.shutdown())
        .await
        .expect("shutdown within the bound")
        .expect("clean shutdown");
    let text = tokio::time::timeout(PROMPT, reader)
        .await
        .expect("body ends")
        .expect("reader");
    let events = sse_events(&text);
    let (last, data) = events.last().expect("events");
    assert_eq!(last, "error");
    assert_eq!(data["code"], "UNAVAILABLE", "{data}");
}

#[tokio::test]
async fn open_connections_are_bounded() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut config = GatewayConfig::default();
    config.max_connections = 1;
    let h = start_with(config).await;
    let mut first = tokio::net::TcpStream::connect(h.gateway.local_addr())
        .await
        .expect("connect");
    first
        .write_all(b"GET /v1/books/b1 HTTP/1.1\r\nhost: gateway\r\n\r\n")
        .await
        .expect("write");
    let mut head = [0u8; 12];
    tokio::time::timeout(PROMPT, first.read_exact(&mut head))
        .await
        .expect("the first connection is served")
        .expect("read");
    assert_eq!(&head, b"HTTP/1.1 200");

    // The first connection stays open (keep-alive): a second one waits.
    let http = h.http.clone();
    let mut second = tokio::spawn(async move { http.get("/v1/books/b2").await.status });
    let waited = tokio::time::timeout(std::time::Duration::from_millis(300), &mut second).await;
    assert!(
        waited.is_err(),
        "a second connection was served past the limit"
    );
    drop(first);
    let status = tokio::time::timeout(PROMPT, second)
        .await
        .expect("served once the first connection closed")
        .expect("task");
    assert_eq!(status, 200);
}
