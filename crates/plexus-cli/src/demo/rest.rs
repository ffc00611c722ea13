//! The REST share of the workload, through the shop's gateway: orders
//! placed and read back over HTTP/JSON, watched over Server-Sent Events,
//! and client mistakes answered with 4xx errors that name the problem.

use futures::StreamExt as _;
use serde_json::{Value, json};
use shop::orders::v1::PlaceOrderRequest;
use tokio::time::Instant;

use super::orders::order;
use super::report::{Invariant, Latency, Row};

/// The demo's HTTP client.
pub(super) fn client() -> anyhow::Result<reqwest::Client> {
    // reqwest sets up TLS even for plain http; plexus uses ring. An error
    // only says a provider is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::Client::builder().build()?)
}

/// Requests in flight at once.
const CONCURRENCY: usize = 8;

/// The JSON body of the `i`-th order (the proto3 JSON mapping).
fn order_json(i: usize) -> Value {
    let order: PlaceOrderRequest = order(i);
    json!({
        "customerId": order.customer_id,
        "items": order.items.iter().map(|item| json!({
            "sku": item.sku,
            "quantity": item.quantity,
            // uint64 is a string in proto3 JSON.
            "unitPriceCents": item.unit_price_cents.to_string(),
        })).collect::<Vec<_>>(),
    })
}

/// Places `count` orders with `POST /v1/orders`, then reads each back with
/// `GET /v1/orders/{id}`. Returns the row and the ids.
pub(super) async fn place_and_read(
    http: &reqwest::Client,
    base: &str,
    count: usize,
) -> (Row, Vec<String>) {
    let mut latency = Latency::new();
    let mut violations = Vec::new();
    let mut calls = 0;
    let mut ok = 0;
    let placed: Vec<_> = futures::stream::iter(0..count)
        .map(|i| async move {
            let start = Instant::now();
            let reply = call(http.post(format!("{base}/v1/orders")).json(&order_json(i))).await;
            (i, start.elapsed(), reply)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut ids = Vec::new();
    for (i, elapsed, reply) in placed {
        calls += 1;
        latency.record(elapsed);
        match reply {
            Ok(body) => match body["orderId"].as_str() {
                Some(id) => {
                    ok += 1;
                    ids.push((i, id.to_owned()));
                }
                None => violations.push(format!("POST order {i}: no orderId in {body}")),
            },
            Err(e) => violations.push(format!("POST order {i}: {e}")),
        }
    }
    let read: Vec<_> = futures::stream::iter(ids.clone())
        .map(|(i, id)| async move {
            let start = Instant::now();
            let reply = call(http.get(format!("{base}/v1/orders/{id}"))).await;
            (i, id, start.elapsed(), reply)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    for (i, id, elapsed, reply) in read {
        calls += 1;
        latency.record(elapsed);
        match reply {
            Ok(body)
                if body["orderId"] == id.as_str()
                    && body["customerId"] == order_json(i)["customerId"] =>
            {
                ok += 1;
            }
            Ok(body) => violations.push(format!("GET {id}: read back {body}")),
            Err(e) => violations.push(format!("GET {id}: {e}")),
        }
    }
    let row = Row {
        pattern: "REST → gRPC (gateway)",
        calls,
        ok,
        latency,
        invariant: Invariant::check("every REST order readable back", &violations),
    };
    (row, ids.into_iter().map(|(_, id)| id).collect())
}

/// Watches each order over `GET /v1/orders/{id}/watch` (Server-Sent Events)
/// until the stream ends.
pub(super) async fn watch(
    http: &reqwest::Client,
    base: &str,
    ids: &[String],
    step_millis: u32,
) -> Row {
    let mut latency = Latency::new();
    let mut violations = Vec::new();
    let results: Vec<_> = futures::stream::iter(ids.iter().cloned())
        .map(|id| async move {
            let start = Instant::now();
            let events = sse(http.get(format!(
                "{base}/v1/orders/{id}/watch?stepMillis={step_millis}"
            )))
            .await;
            (id, start.elapsed(), events)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut ok = 0;
    for (id, elapsed, events) in results {
        latency.record(elapsed);
        match events {
            Ok(events) => match events.last().and_then(|e| e["status"].as_str()) {
                Some("ORDER_STATUS_DELIVERED") => ok += 1,
                last => violations.push(format!(
                    "{id}: stream ended at {last:?} after {} events",
                    events.len()
                )),
            },
            Err(e) => violations.push(format!("{id}: {e}")),
        }
    }
    Row {
        pattern: "REST server-sent events",
        calls: ids.len() as u64,
        ok,
        latency,
        invariant: Invariant::check("every SSE stream ended DELIVERED", &violations),
    }
}

/// Client mistakes: each must be a 4xx whose JSON error names the problem.
pub(super) async fn mistakes(http: &reqwest::Client, base: &str) -> Row {
    let cases: [(&str, reqwest::RequestBuilder, u16, &str); 4] = [
        (
            "invalid JSON",
            http.post(format!("{base}/v1/orders"))
                .header("content-type", "application/json")
                .body("{\"customerId\": "),
            400,
            "line",
        ),
        (
            "unknown field",
            http.post(format!("{base}/v1/orders"))
                .json(&json!({"customerId": "c", "colour": "red"})),
            400,
            "colour",
        ),
        (
            "unknown order",
            http.get(format!("{base}/v1/orders/ord-999999999")),
            404,
            "ord-999999999",
        ),
        (
            "invalid order",
            http.post(format!("{base}/v1/orders"))
                .json(&json!({"customerId": "c", "items": []})),
            400,
            "items",
        ),
    ];
    let mut latency = Latency::new();
    let mut violations = Vec::new();
    let mut ok = 0;
    let calls = cases.len() as u64;
    for (what, request, status, needle) in cases {
        let start = Instant::now();
        let reply = request.send().await;
        latency.record(start.elapsed());
        match reply {
            Ok(reply) => {
                let got = reply.status().as_u16();
                let body: Value = reply.json().await.unwrap_or(Value::Null);
                let message = body["message"].as_str().unwrap_or_default();
                if got == status && message.contains(needle) {
                    ok += 1;
                } else {
                    violations.push(format!(
                        "{what}: HTTP {got} {body}, expected {status} naming `{needle}`"
                    ));
                }
            }
            Err(e) => violations.push(format!("{what}: {e}")),
        }
    }
    Row {
        pattern: "REST client mistakes",
        calls,
        ok,
        latency,
        invariant: Invariant::check("each a 4xx naming the problem", &violations),
    }
}

async fn call(request: reqwest::RequestBuilder) -> Result<Value, String> {
    let reply = request.send().await.map_err(|e| e.to_string())?;
    let status = reply.status();
    let body: Value = reply.json().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("HTTP {status}: {body}"));
    }
    Ok(body)
}

/// The `data:` events of a Server-Sent Events answer, until it ends; an
/// `event: error` fails with its body.
async fn sse(request: reqwest::RequestBuilder) -> Result<Vec<Value>, String> {
    let reply = request
        .header("accept", "text/event-stream")
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !reply.status().is_success() {
        return Err(format!("HTTP {}", reply.status()));
    }
    let text = reply.text().await.map_err(|e| e.to_string())?;
    let mut events = Vec::new();
    let mut error = false;
    for line in text.lines() {
        if line.starts_with("event: error") {
            error = true;
        } else if let Some(data) = line.strip_prefix("data:") {
            if error {
                return Err(format!("error event: {}", data.trim()));
            }
            events
                .push(serde_json::from_str(data.trim()).map_err(|e| format!("event {data}: {e}"))?);
        }
    }
    Ok(events)
}
