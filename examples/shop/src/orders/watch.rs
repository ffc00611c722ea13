//! The `WatchOrder` producer: moves one order through its fulfilment and
//! sends each change, until DELIVERED or until the call is over.

use std::sync::Arc;
use std::time::Duration;

use plexus_core::Deadline;
use plexus_rpc::CallContext;
use tokio::sync::mpsc;
use tonic::Status;

use super::metrics::OrdersMetrics;
use super::store::OrderStore;
use super::v1::{OrderStatus, OrderUpdate};

/// What one watch needs.
pub(crate) struct Watch {
    pub(crate) store: Arc<OrderStore>,
    pub(crate) metrics: Arc<OrdersMetrics>,
    pub(crate) order_id: String,
    pub(crate) step: Duration,
}

/// Starts the producer of one watch; its updates arrive on the returned
/// receiver. With a call context the producer is stopped as soon as the call
/// is over; without one (the service outside a plexus server) it stops when
/// the receiver is dropped.
pub(crate) fn spawn(
    watch: Watch,
    ctx: Option<&CallContext>,
    buffer: usize,
) -> mpsc::Receiver<Result<OrderUpdate, Status>> {
    let (tx, rx) = mpsc::channel(buffer.max(1));
    OrdersMetrics::add(&watch.metrics.watchers_started, 1);
    let guard = Outcome {
        metrics: watch.metrics.clone(),
        deadline: ctx.and_then(CallContext::deadline),
        completed: false,
    };
    let producer = produce(watch, tx, guard);
    match ctx {
        Some(ctx) => drop(ctx.spawn(producer)),
        None => drop(tokio::spawn(producer)),
    }
    rx
}

async fn produce(
    watch: Watch,
    tx: mpsc::Sender<Result<OrderUpdate, Status>>,
    mut outcome: Outcome,
) {
    let Watch {
        store,
        order_id,
        step,
        ..
    } = watch;
    let mut status = match store.get(&order_id) {
        Some(order) => order.status(),
        None => {
            let _ = tx.send(Err(not_found(&order_id))).await;
            outcome.completed = true;
            return;
        }
    };
    for sequence in 0u32.. {
        let update = OrderUpdate {
            order_id: order_id.clone(),
            status: status.into(),
            sequence,
        };
        if tx.send(Ok(update)).await.is_err() {
            return; // the client went away
        }
        if status == OrderStatus::Delivered {
            outcome.completed = true;
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(step) => {}
            () = tx.closed() => return,
        }
        status = match store.advance_from(&order_id, status) {
            Some(next) => next,
            None => {
                let _ = tx.send(Err(not_found(&order_id))).await;
                outcome.completed = true;
                return;
            }
        };
    }
}

pub(crate) fn not_found(order_id: &str) -> Status {
    Status::not_found(format!(
        "order {order_id} not found; check the id PlaceOrder returned"
    ))
}

/// Counts how the producer ended, when it ends: completed, or stopped by a
/// cancel or by the deadline (the producer's future is dropped then).
struct Outcome {
    metrics: Arc<OrdersMetrics>,
    deadline: Option<Deadline>,
    completed: bool,
}

impl Drop for Outcome {
    fn drop(&mut self) {
        let counter = if self.completed {
            &self.metrics.watchers_completed
        } else if self.deadline.is_some_and(|d| d.is_expired()) {
            &self.metrics.watchers_deadline_exceeded
        } else {
            &self.metrics.watchers_cancelled
        };
        OrdersMetrics::add(counter, 1);
    }
}
