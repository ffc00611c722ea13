//! Starting the support service on a plexus server.

use plexus_rpc::Server;
use plexus_rpc::client::ClientBuilder;

use super::config::SupportConfig;
use super::metrics::SupportMetrics;
use super::service::SupportService;
use crate::Running;
use crate::orders::v1::orders_client::OrdersClient;

/// Serves the support service on a free loopback port (`127.0.0.1:0`), with
/// health and reflection. With [`SupportConfig::orders_url`], the agent's
/// client of the orders service connects on its first lookup.
pub async fn start(config: SupportConfig) -> Result<Running<SupportMetrics>, plexus_rpc::Error> {
    start_on("127.0.0.1:0", config).await
}

/// Serves the support service on `addr`, with health and reflection.
pub async fn start_on(
    addr: &str,
    config: SupportConfig,
) -> Result<Running<SupportMetrics>, plexus_rpc::Error> {
    let orders = match &config.orders_url {
        Some(url) => Some(OrdersClient::new(
            ClientBuilder::new(url.clone()).connect_lazy()?,
        )),
        None => None,
    };
    let service = SupportService::new(config, orders);
    let metrics = service.metrics();
    let server = Server::builder()
        .add_service(service.into_server())
        .reflection(super::FILE_DESCRIPTOR_SET)
        .bind(addr)
        .await?
        .spawn();
    Ok(Running::new(server, metrics))
}
