//! Shared test support: clients of the shop's services, sample orders,
//! bounded waits.
#![allow(dead_code)]

use std::time::Duration;

use plexus_rpc::client::{Channel, ClientBuilder};
use shop::Running;
use shop::orders::v1::orders_client::OrdersClient;
use shop::orders::v1::{LineItem, PlaceOrderRequest};
use shop::support::v1::support_client::SupportClient;

/// A plexus client of a running service.
pub async fn channel<M>(service: &Running<M>) -> Channel {
    ClientBuilder::new(service.url())
        .connect()
        .await
        .expect("connect to the service")
}

/// A client of a running orders service.
pub async fn orders_client<M>(service: &Running<M>) -> OrdersClient<Channel> {
    OrdersClient::new(channel(service).await)
}

/// A client of a running support service.
pub async fn support_client<M>(service: &Running<M>) -> SupportClient<Channel> {
    SupportClient::new(channel(service).await)
}

/// One line.
pub fn item(sku: &str, quantity: u32, unit_price_cents: u64) -> LineItem {
    LineItem {
        sku: sku.to_owned(),
        quantity,
        unit_price_cents,
    }
}

/// A valid order of two lines worth 2 × 250 + 1 × 199 = 699 cents.
pub fn sample_order(customer: &str) -> PlaceOrderRequest {
    PlaceOrderRequest {
        customer_id: customer.to_owned(),
        items: vec![item("sku-mug", 2, 250), item("sku-tea", 1, 199)],
    }
}

/// Waits until `condition` holds, checking every millisecond, for at most `bound`.
pub async fn wait_until(bound: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + bound;
    while tokio::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    condition()
}

/// `OrderPlaced` events of orders `ord-0`..`ord-{count-1}`, of customer
/// `cus-1`, 100 cents each.
pub fn order_events(count: usize) -> Vec<plexus_core::Message> {
    (0..count)
        .map(|n| {
            shop::orders::OrderPlaced {
                order_id: format!("ord-{n}"),
                customer_id: "cus-1".to_owned(),
                total_cents: 100,
            }
            .to_message()
            .unwrap()
        })
        .collect()
}
