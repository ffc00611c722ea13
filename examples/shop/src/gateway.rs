//! The shop's REST/JSON gateway in front of [`orders`](crate::orders):
//! the `google.api.http` bindings of `shop.orders.v1.Orders`, served over
//! HTTP/JSON and transcoded onto gRPC calls.
//!
//! | route | gRPC method |
//! |---|---|
//! | `POST /v1/orders` (the whole `PlaceOrderRequest` as the JSON body) | `PlaceOrder` |
//! | `GET /v1/orders/{order_id}` | `GetOrder` |
//! | `GET /v1/orders/{order_id}/watch?stepMillis=50` (Server-Sent Events, or NDJSON with `Accept: application/x-ndjson`) | `WatchOrder` |
//! | `GET /openapi.json` | the OpenAPI 3 document of these routes |
//!
//! Requests may carry `plexus-timeout-ms` (or `grpc-timeout`) and
//! `traceparent`; both continue onto the call to orders.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let orders = shop::orders::start(shop::orders::OrdersConfig::default()).await?;
//! let gateway = shop::gateway::start(&orders.url()).await?;
//! println!("curl {}/v1/orders/ord-1", gateway.url());
//! # Ok(()) }
//! ```

use plexus_gateway::{Gateway, GatewayConfig, GatewayHandle};

/// The gRPC service the gateway exposes.
pub const ORDERS_SERVICE: &str = "shop.orders.v1.Orders";

/// Serves the gateway on a free loopback port (`127.0.0.1:0`) in front of
/// the orders service at `orders_url`, with the default [`GatewayConfig`].
pub async fn start(orders_url: &str) -> Result<GatewayHandle, plexus_gateway::Error> {
    start_on("127.0.0.1:0", orders_url, GatewayConfig::default()).await
}

/// Serves the gateway on `addr` in front of the orders service at
/// `orders_url`. The gateway connects to orders on its first request.
pub async fn start_on(
    addr: &str,
    orders_url: &str,
    config: GatewayConfig,
) -> Result<GatewayHandle, plexus_gateway::Error> {
    let gateway = Gateway::builder()
        .descriptor_set(crate::orders::FILE_DESCRIPTOR_SET)
        .upstream_url(ORDERS_SERVICE, orders_url)
        .config(config)
        .build()?;
    Ok(gateway.bind(addr).await?.spawn())
}
