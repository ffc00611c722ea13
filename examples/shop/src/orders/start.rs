//! Starting the orders service on a plexus server.

use std::sync::Arc;

use plexus_core::bus::Publisher;
use plexus_rpc::Server;

use super::config::OrdersConfig;
use super::metrics::OrdersMetrics;
use super::service::OrdersService;
use crate::Running;

/// Serves the orders service on a free loopback port (`127.0.0.1:0`), with
/// health and reflection.
pub async fn start(config: OrdersConfig) -> Result<Running<OrdersMetrics>, plexus_rpc::Error> {
    start_on("127.0.0.1:0", config).await
}

/// Serves the orders service on `addr`, with health and reflection.
pub async fn start_on(
    addr: &str,
    config: OrdersConfig,
) -> Result<Running<OrdersMetrics>, plexus_rpc::Error> {
    serve(addr, OrdersService::new(config)).await
}

/// Serves the orders service on a free loopback port, announcing every
/// order placed on `events` (see [`OrderPlaced`](super::OrderPlaced)).
pub async fn start_with_events(
    config: OrdersConfig,
    events: Arc<dyn Publisher>,
) -> Result<Running<OrdersMetrics>, plexus_rpc::Error> {
    serve(
        "127.0.0.1:0",
        OrdersService::new(config).with_events(events),
    )
    .await
}

/// Serves the orders service on a free loopback port, recording every
/// order placed with its [`OrderPlaced`](super::OrderPlaced) event in
/// `ledger` (the transactional outbox).
pub async fn start_with_outbox(
    config: OrdersConfig,
    ledger: super::OrderLedger,
) -> Result<Running<OrdersMetrics>, plexus_rpc::Error> {
    serve(
        "127.0.0.1:0",
        OrdersService::new(config).with_outbox(ledger),
    )
    .await
}

async fn serve(
    addr: &str,
    service: OrdersService,
) -> Result<Running<OrdersMetrics>, plexus_rpc::Error> {
    let metrics = service.metrics();
    let server = Server::builder()
        .add_service(service.into_server())
        .reflection(super::FILE_DESCRIPTOR_SET)
        .bind(addr)
        .await?
        .spawn();
    Ok(Running::new(server, metrics))
}
