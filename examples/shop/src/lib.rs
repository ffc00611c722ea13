//! The plexus reference shop: services that each give one communication
//! pattern a real job, started on plexus's gRPC [`Server`](plexus_rpc::Server)
//! and driven by `plexus demo`.
//!
//! | service | pattern |
//! |---|---|
//! | [`orders`] (`shop.orders.v1.Orders`) | unary (`PlaceOrder`, `GetOrder`), server streaming (`WatchOrder`), client streaming (`ImportOrders`) |
//! | [`support`] (`shop.support.v1.Support`) | bidirectional streaming (`Chat`) |
//! | [`orders`] with an [`OrderLedger`](orders::OrderLedger) | transactional outbox: the order row and its `OrderPlaced` event in one SQLite transaction |
//! | [`inventory`] (stock reservations on `OrderPlaced`) | inbox: each event's effect applied once, however often it comes |
//! | [`notifications`] (email ×3, sms, analytics on `OrderPlaced`) | publish/subscribe: each consumer group gets every event, members of a group share them |
//! | [`gateway`] (REST/JSON in front of orders) | synchronous HTTP: `POST /v1/orders`, `GET /v1/orders/{order_id}`, `GET /v1/orders/{order_id}/watch` (Server-Sent Events) |
//!
//! Each service has a `start` function that serves it on loopback (health
//! and reflection on) and returns a [`Running`] service:
//!
//! ```no_run
//! # async fn run() -> Result<(), plexus_rpc::Error> {
//! let orders = shop::orders::start(shop::orders::OrdersConfig::default()).await?;
//! let mut support_config = shop::support::SupportConfig::default();
//! support_config.orders_url = Some(orders.url());
//! let support = shop::support::start(support_config).await?;
//! println!("orders on {}, support on {}", orders.url(), support.url());
//! # Ok(()) }
//! ```
//!
//! The protos live in `proto/shop/` at the root of the repository.

pub mod gateway;
pub mod inventory;
pub mod notifications;
pub mod orders;
mod running;
pub mod support;

pub use running::Running;

/// The encoded `FileDescriptorSet` of every shop proto, for reflection and
/// for tools that describe the shop's messages.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/shop_descriptor.bin"));
