//! Extra axum routes on the gateway (`GatewayBuilder::extra_routes`): served
//! beside the transcoded routes, behind the gateway's request slot, body
//! limit, deadline and trace handling, with its JSON errors.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use plexus_gateway::{Gateway, GatewayConfig, GatewayHandle};
use plexus_rpc::CallContext;
use plexus_rpc::client::ClientBuilder;
use serde_json::{Value as Json, json};
use tokio::sync::{Notify, mpsc};

const DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/library_descriptor.bin"));
const SERVICE: &str = "plexus.gateway.test.v1.Library";
/// Bound on anything that should happen promptly.
const PROMPT: Duration = Duration::from_secs(10);
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// A gateway whose upstream is never reached (nothing listens there), with
/// `routes` as extra routes.
async fn start(config: GatewayConfig, routes: Router) -> GatewayHandle {
    let upstream = ClientBuilder::new("http://127.0.0.1:9")
        .connect_lazy()
        .unwrap();
    Gateway::builder()
        .descriptor_set(DESCRIPTOR_SET)
        .upstream(SERVICE, upstream)
        .config(config)
        .extra_routes(routes)
        .build()
        .unwrap()
        .bind("127.0.0.1:0")
        .await
        .unwrap()
        .spawn()
}

struct Reply {
    status: StatusCode,
    content_type: Option<String>,
    body: Json,
}

async fn send(
    gateway: &GatewayHandle,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &'static [u8],
) -> Reply {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let mut request = Request::builder()
        .method(method)
        .uri(format!("{}{path}", gateway.url()));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(Bytes::from_static(body))).unwrap();
    let response = tokio::time::timeout(PROMPT, client.request(request))
        .await
        .expect("the gateway answers promptly")
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{status}: not JSON ({e}): {body:?}"));
    Reply {
        status,
        content_type,
        body,
    }
}

fn assert_error(reply: &Reply, status: u16, code: &str, needle: &str) {
    assert_eq!(reply.status.as_u16(), status, "{}", reply.body);
    assert_eq!(reply.body["code"], code, "{}", reply.body);
    assert_eq!(reply.content_type.as_deref(), Some("application/json"));
    let message = reply.body["message"].as_str().unwrap_or_default();
    assert!(message.contains(needle), "`{needle}` not in `{message}`");
}

/// What the handler sees of its call context.
async fn inspect() -> String {
    let ctx = CallContext::current().expect("an extra route runs in a call context");
    let remaining = ctx.deadline().map(|d| d.remaining().as_millis() as u64);
    json!({"remainingMs": remaining, "traceId": ctx.trace().trace_id()}).to_string()
}

fn counting(calls: &Arc<AtomicUsize>) -> Router {
    let calls = Arc::clone(calls);
    Router::new().route(
        "/count",
        post(move |body: Bytes| {
            let calls = Arc::clone(&calls);
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                json!({"bytes": body.len()}).to_string()
            }
        }),
    )
}

#[tokio::test]
async fn an_extra_route_runs_in_the_requests_deadline_and_trace() {
    let gateway = start(
        GatewayConfig::default(),
        Router::new().route("/inspect", get(inspect)),
    )
    .await;
    let traceparent = format!("00-{TRACE_ID}-00f067aa0ba902b7-01");
    let reply = send(
        &gateway,
        Method::GET,
        "/inspect",
        &[("plexus-timeout-ms", "5000"), ("traceparent", &traceparent)],
        b"",
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let remaining = reply.body["remainingMs"].as_u64().unwrap();
    assert!(remaining > 0 && remaining <= 5000, "{remaining} ms left");
    assert_eq!(reply.body["traceId"], TRACE_ID);

    // Without headers: the configured default deadline and a new trace.
    let reply = send(&gateway, Method::GET, "/inspect", &[], b"").await;
    let remaining = reply.body["remainingMs"].as_u64().unwrap();
    assert!(remaining > 0 && remaining <= 30_000, "{remaining} ms left");
    let trace = reply.body["traceId"].as_str().unwrap();
    assert_eq!(trace.len(), 32);
    assert_ne!(trace, TRACE_ID);
}

#[tokio::test]
async fn refused_requests_get_json_errors_and_never_reach_the_handler() {
    let calls = Arc::new(AtomicUsize::new(0));
    let mut config = GatewayConfig::default();
    config.max_body_bytes = 64;
    let gateway = start(config, counting(&calls)).await;

    let spent = send(
        &gateway,
        Method::POST,
        "/count",
        &[("plexus-timeout-ms", "0")],
        b"{}",
    )
    .await;
    assert_error(&spent, 504, "DEADLINE_EXCEEDED", "deadline");
    let malformed = send(
        &gateway,
        Method::POST,
        "/count",
        &[("plexus-timeout-ms", "soon")],
        b"{}",
    )
    .await;
    assert_error(&malformed, 400, "INVALID_ARGUMENT", "soon");
    let large = send(&gateway, Method::POST, "/count", &[], &[b'x'; 65]).await;
    assert_error(&large, 413, "RESOURCE_EXHAUSTED", "limit of 64 bytes");
    assert_eq!(calls.load(Ordering::SeqCst), 0);

    let fits = send(&gateway, Method::POST, "/count", &[], &[b'x'; 64]).await;
    assert_eq!(fits.status, StatusCode::OK, "{}", fits.body);
    assert_eq!(fits.body["bytes"], 64);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_handler_still_running_at_its_deadline_is_answered_504() {
    let hang = Router::new().route("/hang", get(std::future::pending::<String>));
    let gateway = start(GatewayConfig::default(), hang).await;
    let reply = send(
        &gateway,
        Method::GET,
        "/hang",
        &[("plexus-timeout-ms", "50")],
        b"",
    )
    .await;
    assert_error(&reply, 504, "DEADLINE_EXCEEDED", "deadline");
}

#[tokio::test]
async fn extra_routes_share_the_gateways_request_slots() {
    let entered = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let (hold_entered, hold_release) = (Arc::clone(&entered), Arc::clone(&release));
    let calls = Arc::new(AtomicUsize::new(0));
    let routes = counting(&calls).route(
        "/hold",
        get(move || {
            let (entered, release) = (Arc::clone(&hold_entered), Arc::clone(&hold_release));
            async move {
                entered.notify_one();
                release.notified().await;
                json!({"held": true}).to_string()
            }
        }),
    );
    let mut config = GatewayConfig::default();
    config.max_concurrent_requests = 1;
    let gateway = Arc::new(start(config, routes).await);

    let (done_tx, mut done) = mpsc::channel(1);
    let holder = Arc::clone(&gateway);
    tokio::spawn(async move {
        let reply = send(&holder, Method::GET, "/hold", &[], b"").await;
        let _ = done_tx.send(reply.status).await;
    });
    tokio::time::timeout(PROMPT, entered.notified())
        .await
        .expect("the first request reaches its handler");

    let busy = send(&gateway, Method::POST, "/count", &[], b"{}").await;
    assert_error(&busy, 503, "UNAVAILABLE", "limit of 1 requests");
    assert_eq!(calls.load(Ordering::SeqCst), 0);

    release.notify_one();
    let held = tokio::time::timeout(PROMPT, done.recv()).await.unwrap();
    assert_eq!(held, Some(StatusCode::OK));
    let after = send(&gateway, Method::POST, "/count", &[], b"{}").await;
    assert_eq!(after.status, StatusCode::OK, "{}", after.body);
}

#[tokio::test]
async fn transcoded_routes_openapi_and_unknown_paths_still_answer() {
    let gateway = start(
        GatewayConfig::default(),
        Router::new().route("/inspect", get(inspect)),
    )
    .await;
    let unknown = send(&gateway, Method::GET, "/nowhere", &[], b"").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.body);
    assert_eq!(unknown.body["code"], "NOT_FOUND");
    let openapi = send(&gateway, Method::GET, "/openapi.json", &[], b"").await;
    assert_eq!(openapi.status, StatusCode::OK);
    assert!(openapi.body["paths"]["/v1/books/{book_id}"].is_object());
    // A transcoded route reaches for its upstream, where nothing listens.
    let book = send(&gateway, Method::GET, "/v1/books/1", &[], b"").await;
    assert_error(&book, 503, "UNAVAILABLE", "");
}
