//! Starting the orders service on a plexus server.

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
    let service = OrdersService::new(config);
    let metrics = service.metrics();
    let server = Server::builder()
        .add_service(service.into_server())
        .reflection(super::FILE_DESCRIPTOR_SET)
        .bind(addr)
        .await?
        .spawn();
    Ok(Running::new(server, metrics))
}
