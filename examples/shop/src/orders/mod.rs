//! `shop.orders.v1.Orders`: places orders, reads them back, streams their
//! fulfilment, imports them in bulk.
//!
//! - `PlaceOrder` and `GetOrder` (unary) validate the order (every problem is
//!   `INVALID_ARGUMENT` naming the field, e.g. `items[1].quantity`) and keep
//!   it in a bounded in-memory store ([`OrdersConfig::max_orders`]; past it,
//!   `RESOURCE_EXHAUSTED`). An unknown order is `NOT_FOUND`.
//! - `WatchOrder` (server streaming) sends the order's status, then moves it
//!   through the simulated fulfilment — PLACED → PAID → PACKED → SHIPPED →
//!   DELIVERED, one step per interval — sending each change, and ends after
//!   DELIVERED. The producer runs in the call's
//!   [`CallContext`](plexus_rpc::CallContext), so it stops as soon as the
//!   client cancels or the deadline passes; [`OrdersMetrics`] counts how
//!   each watch ended.
//! - `ImportOrders` (client streaming) imports a bounded stream of orders
//!   ([`OrdersConfig::max_orders_per_import`]) all at once: invalid orders are
//!   counted and skipped, the valid ones are stored together or not at all.
//! - With an event publisher ([`start_with_events`]), every order placed is
//!   announced as an [`OrderPlaced`] event on [`ORDER_PLACED_TOPIC`]. With
//!   an [`OrderLedger`] ([`start_with_outbox`]), each order is stored in
//!   SQLite with its event in one transaction (the transactional outbox),
//!   and a customer's orders are bounded by a credit limit
//!   ([`OrdersConfig::credit_limit_cents`]; past it, `FAILED_PRECONDITION`
//!   and nothing stored).

mod config;
mod events;
mod ledger;
mod metrics;
mod service;
mod start;
mod store;
mod validate;
mod watch;

pub use config::OrdersConfig;
pub use events::{ORDER_PLACED_TOPIC, ORDER_PLACED_TYPE, OrderPlaced};
pub use ledger::OrderLedger;
pub use metrics::OrdersMetrics;
pub use service::OrdersService;
pub use start::{start, start_on, start_with_events, start_with_outbox};
pub use validate::{MAX_ID_BYTES, MAX_QUANTITY, MAX_UNIT_PRICE_CENTS};

/// Generated types and service traits of `shop.orders.v1`.
#[allow(missing_docs)]
pub mod v1 {
    tonic::include_proto!("shop.orders.v1");
}

/// The encoded `FileDescriptorSet` of `shop.orders.v1`, for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/shop.orders.v1_descriptor.bin"));

/// The status after `status` in the fulfilment, or `None` after DELIVERED.
pub fn next_status(status: v1::OrderStatus) -> Option<v1::OrderStatus> {
    use v1::OrderStatus::*;
    match status {
        Unspecified => Some(Placed),
        Placed => Some(Paid),
        Paid => Some(Packed),
        Packed => Some(Shipped),
        Shipped => Some(Delivered),
        Delivered => None,
    }
}

/// A short lowercase name of `status` ("placed", "shipped", …), for people.
pub fn status_label(status: v1::OrderStatus) -> &'static str {
    use v1::OrderStatus::*;
    match status {
        Unspecified => "unknown",
        Placed => "placed",
        Paid => "paid",
        Packed => "packed",
        Shipped => "shipped",
        Delivered => "delivered",
    }
}
