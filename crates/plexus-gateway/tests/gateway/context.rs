//! Deadline and trace context: HTTP headers in, gRPC metadata out.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use plexus_core::TraceContext;
use plexus_gateway::GatewayConfig;

use crate::support::{start, start_with};

#[tokio::test]
async fn the_timeout_header_becomes_the_upstream_deadline() {
    let h = start().await;
    for (header, value, budget) in [
        ("plexus-timeout-ms", "5000", 5000),
        ("grpc-timeout", "3S", 3000),
        ("grpc-timeout", "1500m", 1500),
    ] {
        let body = h
            .http
            .send("GET", "/v1/inspect", &[(header, value)], b"")
            .await
            .json();
        assert_eq!(body["hasDeadline"], true, "{header}: {body}");
        let remaining: u64 = body["remainingMillis"]
            .as_str()
            .unwrap_or("0")
            .parse()
            .unwrap_or(0);
        assert!(
            remaining <= budget && remaining + 1000 > budget,
            "{header}: {value} gave the handler {remaining} ms"
        );
    }
    // plexus-timeout-ms wins over grpc-timeout.
    let body = h
        .http
        .send(
            "GET",
            "/v1/inspect",
            &[("plexus-timeout-ms", "2000"), ("grpc-timeout", "9S")],
            b"",
        )
        .await
        .json();
    let remaining: u64 = body["remainingMillis"]
        .as_str()
        .unwrap_or("0")
        .parse()
        .unwrap_or(0);
    assert!(remaining <= 2000 && remaining > 1000, "{body}");
}

#[tokio::test]
async fn without_a_header_the_default_applies_and_long_ones_are_capped() {
    let mut config = GatewayConfig::default();
    config.default_timeout = Duration::from_secs(7);
    config.max_timeout = Duration::from_secs(20);
    let h = start_with(config).await;
    let body = h.http.get("/v1/inspect").await.json();
    let remaining: u64 = body["remainingMillis"]
        .as_str()
        .unwrap_or("0")
        .parse()
        .unwrap_or(0);
    assert!(remaining <= 7000 && remaining > 6000, "{body}");

    let body = h
        .http
        .send(
            "GET",
            "/v1/inspect",
            &[("plexus-timeout-ms", "3600000")],
            b"",
        )
        .await
        .json();
    let remaining: u64 = body["remainingMillis"]
        .as_str()
        .unwrap_or("0")
        .parse()
        .unwrap_or(0);
    assert!(remaining <= 20_000 && remaining > 19_000, "{body}");
}

#[tokio::test]
async fn an_expired_deadline_is_504_without_calling_upstream() {
    let h = start().await;
    let reply = h
        .http
        .send("GET", "/v1/inspect", &[("plexus-timeout-ms", "0")], b"")
        .await;
    reply.assert_error(504, "DEADLINE_EXCEEDED", &["deadline"]);
    assert_eq!(
        h.library.calls.load(Ordering::SeqCst),
        0,
        "no upstream call"
    );
}

#[tokio::test]
async fn a_deadline_passing_during_the_call_is_504() {
    let h = start().await;
    let started = Instant::now();
    let reply = h
        .http
        .send(
            "GET",
            "/v1/inspect?sleepMillis=5000",
            &[("plexus-timeout-ms", "200")],
            b"",
        )
        .await;
    reply.assert_error(504, "DEADLINE_EXCEEDED", &[]);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(190) && took < Duration::from_secs(3),
        "answered after {took:?}"
    );
}

#[tokio::test]
async fn traceparent_continues_onto_the_grpc_call() {
    let h = start().await;
    let parent = TraceContext::new_root();
    let header = parent.to_traceparent();
    let body = h
        .http
        .send("GET", "/v1/inspect", &[("traceparent", &header)], b"")
        .await
        .json();
    let sent = TraceContext::parse(body["traceparent"].as_str().unwrap_or_default())
        .unwrap_or_else(|e| panic!("the upstream call carried no valid traceparent: {e}; {body}"));
    assert_eq!(sent.trace_id(), parent.trace_id(), "same trace");
    assert_ne!(sent.span_id(), parent.span_id(), "a child span");
    assert_eq!(body["traceId"], parent.trace_id());

    // Without one (or with a malformed one) a new trace starts.
    for headers in [&[][..], &[("traceparent", "garbage")][..]] {
        let body = h.http.send("GET", "/v1/inspect", headers, b"").await.json();
        let sent = TraceContext::parse(body["traceparent"].as_str().unwrap_or_default())
            .expect("a new trace");
        assert_ne!(sent.trace_id(), parent.trace_id());
    }
}
