//! Calls that do not finish normally: one past its deadline, one cancelled
//! by its client. Each checks what the client saw and what the server did.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use plexus_rpc::client::Channel;
use shop::orders::OrdersMetrics;
use shop::orders::v1::WatchOrderRequest;
use shop::orders::v1::orders_client::OrdersClient;
use tokio::time::Instant;
use tonic::{Code, Request};

use super::report::{Invariant, Latency, Row};

/// A step so slow the watch never gets past PLACED on its own.
const SLOW_STEP_MILLIS: u32 = 60_000;
/// Longest wait for the server to show it stopped a watch.
const SERVER_BOUND: Duration = Duration::from_secs(2);

/// A watch with a `deadline` budget must end `DEADLINE_EXCEEDED`, and the
/// server must stop its producer for that reason.
pub(super) async fn deadline(
    client: &OrdersClient<Channel>,
    metrics: &Arc<OrdersMetrics>,
    order_id: &str,
    budget: Duration,
) -> Row {
    let before = metrics.watchers_deadline_exceeded();
    let mut request = Request::new(WatchOrderRequest {
        order_id: order_id.to_owned(),
        step_millis: SLOW_STEP_MILLIS,
    });
    request.set_timeout(budget);
    let start = Instant::now();
    let mut violations = Vec::new();
    let end = match client.clone().watch_order(request).await {
        Err(status) => Some(status),
        Ok(stream) => {
            // Bounded: far past the budget, well before the next step.
            let updates =
                tokio::time::timeout(budget * 40, stream.into_inner().collect::<Vec<_>>()).await;
            match updates {
                Ok(updates) => updates.into_iter().find_map(Result::err),
                Err(_) => {
                    violations.push(format!(
                        "the stream was still open {:?} after the deadline",
                        budget * 40
                    ));
                    None
                }
            }
        }
    };
    let elapsed = start.elapsed();
    match &end {
        Some(status) if status.code() == Code::DeadlineExceeded => {}
        Some(status) => violations.push(format!("ended {:?}: {}", status.code(), status.message())),
        None if violations.is_empty() => violations.push("the stream ended OK".to_owned()),
        None => {}
    }
    if !wait_until(SERVER_BOUND, || {
        metrics.watchers_deadline_exceeded() > before
    })
    .await
    {
        violations.push(format!(
            "the server did not stop the watch within {SERVER_BOUND:?}"
        ));
    }
    let mut latency = Latency::new();
    latency.record(elapsed);
    Row {
        pattern: "deadline",
        calls: 1,
        ok: u64::from(violations.is_empty()),
        latency,
        invariant: Invariant::check(
            format!("DEADLINE_EXCEEDED seen ({budget:?} budget)"),
            &violations,
        ),
    }
}

/// A watch dropped by its client after the first update must stop its
/// producer on the server. The latency is from the drop to the server's
/// counter showing it.
pub(super) async fn cancellation(
    client: &OrdersClient<Channel>,
    metrics: &Arc<OrdersMetrics>,
    order_id: &str,
) -> Row {
    let before = metrics.watchers_cancelled();
    let request = WatchOrderRequest {
        order_id: order_id.to_owned(),
        step_millis: SLOW_STEP_MILLIS,
    };
    let mut violations = Vec::new();
    let mut latency = Latency::new();
    match client.clone().watch_order(request).await {
        Err(status) => violations.push(format!("WatchOrder: {status}")),
        Ok(stream) => {
            let mut updates = stream.into_inner();
            match updates.next().await {
                Some(Ok(_)) => {}
                other => violations.push(format!("expected a first update, got {other:?}")),
            }
            let dropped = Instant::now();
            drop(updates);
            if wait_until(SERVER_BOUND, || metrics.watchers_cancelled() > before).await {
                latency.record(dropped.elapsed());
            } else {
                violations.push(format!(
                    "the server's producer still ran {SERVER_BOUND:?} after the drop"
                ));
            }
        }
    }
    Row {
        pattern: "cancellation",
        calls: 1,
        ok: u64::from(violations.is_empty()),
        latency,
        invariant: Invariant::check("server saw the cancel", &violations),
    }
}

/// Waits until `condition` holds, checking every millisecond, for at most `bound`.
pub(super) async fn wait_until(bound: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + bound;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    condition()
}
