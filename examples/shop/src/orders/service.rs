//! [`OrdersService`]: the `shop.orders.v1.Orders` handlers.

use std::sync::Arc;
use std::time::Duration;

use plexus_rpc::CallContext;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use plexus_core::bus::Publisher;

use super::config::OrdersConfig;
use super::events::{Events, OrderPlaced, publish};
use super::ledger::OrderLedger;
use super::metrics::OrdersMetrics;
use super::store::OrderStore;
use super::v1::orders_server::{Orders, OrdersServer};
use super::v1::{
    GetOrderRequest, ImportOrdersResponse, Order, OrderUpdate, PlaceOrderRequest,
    PlaceOrderResponse, Rejection, WatchOrderRequest,
};
use super::validate::{check_id, validate};
use super::watch::{self, Watch};

/// The orders service. Clones share the store and the counters.
#[derive(Debug, Clone)]
pub struct OrdersService {
    config: Arc<OrdersConfig>,
    store: Arc<OrderStore>,
    metrics: Arc<OrdersMetrics>,
    events: Option<Events>,
}

impl OrdersService {
    /// A service with an empty store bounded by `config`.
    pub fn new(config: OrdersConfig) -> Self {
        OrdersService {
            store: Arc::new(OrderStore::new(config.max_orders)),
            config: Arc::new(config),
            metrics: Arc::default(),
            events: None,
        }
    }

    /// Announces every order placed as an
    /// [`OrderPlaced`](super::OrderPlaced) event through `publisher`.
    pub fn with_events(mut self, publisher: Arc<dyn Publisher>) -> Self {
        self.events = Some(Events::Publish(publisher));
        self
    }

    /// Records every order placed in `ledger`, with its
    /// [`OrderPlaced`](super::OrderPlaced) event in the same transaction
    /// (the transactional outbox); an order the ledger refuses is not
    /// placed.
    pub fn with_outbox(mut self, ledger: OrderLedger) -> Self {
        self.events = Some(Events::Outbox(ledger));
        self
    }

    /// The service's counters.
    pub fn metrics(&self) -> Arc<OrdersMetrics> {
        self.metrics.clone()
    }

    /// The generated tonic server of this service, to add to a
    /// [`Server`](plexus_rpc::Server).
    pub fn into_server(self) -> OrdersServer<Self> {
        OrdersServer::new(self)
    }

    fn watch_step(&self, step_millis: u32) -> Result<Duration, Status> {
        if step_millis == 0 {
            return Ok(self.config.watch_step);
        }
        let step = Duration::from_millis(u64::from(step_millis));
        if step > self.config.max_watch_step {
            return Err(Status::invalid_argument(format!(
                "step_millis: is {step_millis}; at most {} is allowed (0 uses the server's default)",
                self.config.max_watch_step.as_millis()
            )));
        }
        Ok(step)
    }
}

/// A stream of order updates.
pub type UpdateStream = ReceiverStream<Result<OrderUpdate, Status>>;

#[tonic::async_trait]
impl Orders for OrdersService {
    async fn place_order(
        &self,
        request: Request<PlaceOrderRequest>,
    ) -> Result<Response<PlaceOrderResponse>, Status> {
        let order = validate(request.into_inner(), self.config.max_items_per_order)?;
        let stored = match &self.events {
            Some(Events::Outbox(ledger)) => {
                let order_id = self.store.reserve_id()?;
                ledger
                    .record(
                        &OrderPlaced {
                            order_id: order_id.clone(),
                            customer_id: order.customer_id.clone(),
                            total_cents: order.total_cents,
                        },
                        self.config.credit_limit_cents,
                    )
                    .await?;
                self.store.insert_as(order_id, order)
            }
            _ => self.store.insert(order)?,
        };
        OrdersMetrics::add(&self.metrics.orders_placed, 1);
        if let Some(Events::Publish(publisher)) = &self.events {
            publish(
                publisher.as_ref(),
                OrderPlaced {
                    order_id: stored.order_id.clone(),
                    customer_id: stored.customer_id.clone(),
                    total_cents: stored.total_cents,
                },
            )
            .await?;
        }
        Ok(Response::new(PlaceOrderResponse {
            order_id: stored.order_id,
            total_cents: stored.total_cents,
            status: stored.status,
        }))
    }

    async fn get_order(
        &self,
        request: Request<GetOrderRequest>,
    ) -> Result<Response<Order>, Status> {
        let GetOrderRequest { order_id } = request.into_inner();
        check_id("order_id", &order_id)?;
        match self.store.get(&order_id) {
            Some(order) => Ok(Response::new(order)),
            None => Err(watch::not_found(&order_id)),
        }
    }

    type WatchOrderStream = UpdateStream;

    async fn watch_order(
        &self,
        request: Request<WatchOrderRequest>,
    ) -> Result<Response<UpdateStream>, Status> {
        let ctx = CallContext::from_request(&request).cloned();
        let WatchOrderRequest {
            order_id,
            step_millis,
        } = request.into_inner();
        check_id("order_id", &order_id)?;
        let step = self.watch_step(step_millis)?;
        if self.store.get(&order_id).is_none() {
            return Err(watch::not_found(&order_id));
        }
        let watch = Watch {
            store: self.store.clone(),
            metrics: self.metrics.clone(),
            order_id,
            step,
        };
        let updates = watch::spawn(watch, ctx.as_ref(), self.config.watch_buffer);
        Ok(Response::new(ReceiverStream::new(updates)))
    }

    async fn import_orders(
        &self,
        request: Request<Streaming<PlaceOrderRequest>>,
    ) -> Result<Response<ImportOrdersResponse>, Status> {
        let max = self.config.max_orders_per_import;
        let mut inbound = request.into_inner();
        let mut valid = Vec::new();
        let mut reply = ImportOrdersResponse::default();
        let mut count: usize = 0;
        while let Some(order) = inbound.message().await? {
            if count >= max {
                return Err(Status::resource_exhausted(format!(
                    "the import has more than {max} orders; nothing was imported: \
                     split it into imports of at most {max} orders"
                )));
            }
            match validate(order, self.config.max_items_per_order) {
                Ok(order) => valid.push(order),
                Err(reason) => {
                    reply.rejected = reply.rejected.saturating_add(1);
                    if reply.first_rejections.len() < self.config.max_rejections_reported {
                        reply.first_rejections.push(Rejection {
                            index: u32::try_from(count).unwrap_or(u32::MAX),
                            reason: reason.to_string(),
                        });
                    }
                }
            }
            count += 1;
        }
        reply.order_ids = self.store.insert_all(valid)?;
        reply.accepted = u32::try_from(reply.order_ids.len()).unwrap_or(u32::MAX);
        OrdersMetrics::add(&self.metrics.orders_imported, u64::from(reply.accepted));
        Ok(Response::new(reply))
    }
}
