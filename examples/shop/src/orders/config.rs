//! [`OrdersConfig`]: every bound of the orders service.

use std::time::Duration;

/// The bounds and timings of the orders service. Start from
/// [`Default`] and change the fields you need.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct OrdersConfig {
    /// Orders the in-memory store holds; past it, placing or importing
    /// orders fails with `RESOURCE_EXHAUSTED`. Default 100,000.
    pub max_orders: usize,
    /// Lines one order may have. Default 100.
    pub max_items_per_order: usize,
    /// Orders one `ImportOrders` call may send; past it, the import fails
    /// with `RESOURCE_EXHAUSTED` and nothing is imported. Default 10,000.
    pub max_orders_per_import: usize,
    /// Rejection reasons an `ImportOrders` reply lists. Default 10.
    pub max_rejections_reported: usize,
    /// Time between two fulfilment steps of a `WatchOrder` that does not ask
    /// for its own. Default 500 ms.
    pub watch_step: Duration,
    /// Longest step a `WatchOrder` may ask for. Default 60 s.
    pub max_watch_step: Duration,
    /// Updates a `WatchOrder` producer may run ahead of its client. Default 8.
    pub watch_buffer: usize,
    /// The most a customer's orders may add up to, in cents, where orders
    /// are recorded in an [`OrderLedger`](super::OrderLedger); past it,
    /// `PlaceOrder` fails with `FAILED_PRECONDITION`. Default 10,000,000
    /// (100,000.00).
    pub credit_limit_cents: u64,
}

impl Default for OrdersConfig {
    fn default() -> Self {
        OrdersConfig {
            max_orders: 100_000,
            max_items_per_order: 100,
            max_orders_per_import: 10_000,
            max_rejections_reported: 10,
            watch_step: Duration::from_millis(500),
            max_watch_step: Duration::from_secs(60),
            watch_buffer: 8,
            credit_limit_cents: 10_000_000,
        }
    }
}
