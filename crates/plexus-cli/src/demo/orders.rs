//! The orders service's share of the workload: unary, server streaming and
//! client streaming calls.

use std::collections::HashMap;

use futures::StreamExt as _;
use plexus_rpc::client::Channel;
use shop::orders::v1::orders_client::OrdersClient;
use shop::orders::v1::{
    GetOrderRequest, LineItem, OrderStatus, PlaceOrderRequest, WatchOrderRequest,
};
use tokio::time::Instant;

use super::report::{Invariant, Latency, Row};

/// Calls in flight at once in the unary phases.
const CONCURRENCY: usize = 16;

/// The `i`-th order of the workload: 1–3 lines, varied prices.
pub(super) fn order(i: usize) -> PlaceOrderRequest {
    let lines = 1 + i % 3;
    PlaceOrderRequest {
        customer_id: format!("cus-{}", i % 37),
        items: (0..lines)
            .map(|l| LineItem {
                sku: format!("sku-{}", (i * 7 + l) % 50),
                quantity: 1 + ((i + l) % 4) as u32,
                unit_price_cents: 199 + ((i * 37 + l * 11) % 5_000) as u64,
            })
            .collect(),
    }
}

fn total(order: &PlaceOrderRequest) -> u64 {
    order
        .items
        .iter()
        .map(|i| u64::from(i.quantity) * i.unit_price_cents)
        .sum()
}

/// Places `count` orders, then reads each back. Returns the row and the ids.
pub(super) async fn unary(client: &OrdersClient<Channel>, count: usize) -> (Row, Vec<String>) {
    let mut latency = Latency::new();
    let mut violations = Vec::new();
    let placed: Vec<_> = futures::stream::iter(0..count)
        .map(|i| {
            let mut client = client.clone();
            async move {
                let start = Instant::now();
                let reply = client.place_order(order(i)).await;
                (i, start.elapsed(), reply)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut ids: HashMap<usize, String> = HashMap::new();
    let mut ok = 0;
    for (i, elapsed, reply) in placed {
        latency.record(elapsed);
        match reply {
            Ok(reply) => {
                let reply = reply.into_inner();
                ok += 1;
                if reply.total_cents != total(&order(i)) {
                    violations.push(format!(
                        "order {i}: total {} != {}",
                        reply.total_cents,
                        total(&order(i))
                    ));
                }
                ids.insert(i, reply.order_id);
            }
            Err(status) => violations.push(format!("PlaceOrder {i}: {status}")),
        }
    }
    let read: Vec<_> = futures::stream::iter(ids.clone())
        .map(|(i, order_id)| {
            let mut client = client.clone();
            async move {
                let start = Instant::now();
                let reply = client.get_order(GetOrderRequest { order_id }).await;
                (i, start.elapsed(), reply)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    for (i, elapsed, reply) in read {
        latency.record(elapsed);
        match reply {
            Ok(found) => {
                ok += 1;
                let found = found.into_inner();
                let sent = order(i);
                if found.customer_id != sent.customer_id || found.items != sent.items {
                    violations.push(format!(
                        "{} does not hold what order {i} sent",
                        found.order_id
                    ));
                }
            }
            Err(status) => violations.push(format!("GetOrder of order {i}: {status}")),
        }
    }
    let row = Row {
        pattern: "gRPC unary",
        calls: 2 * count as u64,
        ok,
        latency,
        invariant: Invariant::check("every order readable back", &violations),
    };
    let mut ids: Vec<_> = ids.into_iter().collect();
    ids.sort_unstable();
    (row, ids.into_iter().map(|(_, id)| id).collect())
}

/// Watches each order to the end, all at once.
pub(super) async fn server_streaming(
    client: &OrdersClient<Channel>,
    ids: &[String],
    step_millis: u32,
) -> Row {
    use OrderStatus::*;
    let expected = [Placed, Paid, Packed, Shipped, Delivered];
    let watches = ids.iter().map(|order_id| {
        let mut client = client.clone();
        let order_id = order_id.clone();
        let request = WatchOrderRequest {
            order_id: order_id.clone(),
            step_millis,
        };
        async move {
            let start = Instant::now();
            let updates = match client.watch_order(request).await {
                Ok(stream) => stream.into_inner().collect::<Vec<_>>().await,
                Err(status) => vec![Err(status)],
            };
            (order_id, start.elapsed(), updates)
        }
    });
    let mut latency = Latency::new();
    let mut violations = Vec::new();
    let mut ok = 0;
    for (order_id, elapsed, updates) in futures::future::join_all(watches).await {
        latency.record(elapsed);
        let statuses: Result<Vec<OrderStatus>, _> = updates
            .iter()
            .map(|u| u.as_ref().map(|u| u.status()))
            .collect();
        match statuses {
            Ok(statuses) if statuses == expected => ok += 1,
            Ok(statuses) => violations.push(format!("{order_id}: saw {statuses:?}")),
            Err(status) => violations.push(format!("{order_id}: {status}")),
        }
    }
    Row {
        pattern: "gRPC server streaming",
        calls: ids.len() as u64,
        ok,
        latency,
        invariant: Invariant::check("every stream ended DELIVERED", &violations),
    }
}

/// Imports `count` orders in one call, then reads every one back.
pub(super) async fn client_streaming(client: &OrdersClient<Channel>, count: usize) -> Row {
    let mut latency = Latency::new();
    let mut violations = Vec::new();
    // Offset the customers so the import is told apart from the unary orders.
    let batch: Vec<_> = (0..count).map(|i| order(10_000 + i)).collect();
    let start = Instant::now();
    let reply = client
        .clone()
        .import_orders(futures::stream::iter(batch.clone()))
        .await;
    latency.record(start.elapsed());
    let reply = match reply {
        Ok(reply) => reply.into_inner(),
        Err(status) => {
            violations.push(format!("ImportOrders: {status}"));
            Default::default()
        }
    };
    if reply.accepted as usize != count || reply.order_ids.len() != count {
        violations.push(format!(
            "{} of {count} accepted ({} ids, {} rejected: {:?})",
            reply.accepted,
            reply.order_ids.len(),
            reply.rejected,
            reply.first_rejections
        ));
    }
    let readable: Vec<_> = futures::stream::iter(reply.order_ids.iter().cloned().zip(batch))
        .map(|(order_id, sent)| {
            let mut client = client.clone();
            async move {
                let found = client
                    .get_order(GetOrderRequest {
                        order_id: order_id.clone(),
                    })
                    .await;
                match found {
                    Ok(found) if found.get_ref().items == sent.items => None,
                    Ok(_) => Some(format!("{order_id} does not hold what was imported")),
                    Err(status) => Some(format!("{order_id}: {status}")),
                }
            }
        })
        .buffer_unordered(CONCURRENCY)
        .filter_map(|violation| async move { violation })
        .collect()
        .await;
    violations.extend(readable);
    Row {
        pattern: "gRPC client streaming",
        calls: 1,
        ok: u64::from(violations.is_empty()),
        latency,
        invariant: Invariant::check(format!("{count} imported = {count} readable"), &violations),
    }
}
