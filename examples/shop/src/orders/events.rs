//! [`OrderPlaced`]: the event orders publishes for every order placed.
//!
//! Two ways out: published straight to a bus after the order is stored
//! and before `PlaceOrder` answers (if the publish fails the call fails
//! with `UNAVAILABLE` although the order is stored: the dual write), or
//! written with the order in one transaction through the outbox of an
//! [`OrderLedger`] (no dual write: see `ledger.rs`).

use std::sync::Arc;

use plexus_core::Message;
use plexus_core::bus::Publisher;
use serde::{Deserialize, Serialize};
use tonic::Status;

use super::ledger::OrderLedger;

/// The topic of [`OrderPlaced`] events.
pub const ORDER_PLACED_TOPIC: &str = "shop.orders.placed";

/// The CloudEvents type of [`OrderPlaced`].
pub const ORDER_PLACED_TYPE: &str = "shop.orders.v1.OrderPlaced";

/// An order was placed (JSON payload, keyed by the order id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderPlaced {
    /// The order.
    pub order_id: String,
    /// Who placed it.
    pub customer_id: String,
    /// Its total.
    pub total_cents: u64,
}

impl OrderPlaced {
    /// The event as a message.
    pub fn to_message(&self) -> Result<Message, plexus_core::Error> {
        let payload = serde_json::to_vec(self).map_err(|e| plexus_core::Error::Encode {
            content_type: "application/json",
            reason: e.to_string(),
        })?;
        Message::builder(ORDER_PLACED_TYPE, "/shop/orders")
            .subject(self.order_id.clone())
            .key(self.order_id.clone())
            .payload("application/json", payload)
            .build()
    }

    /// Reads the event from a message.
    pub fn from_message(message: &Message) -> Result<Self, plexus_core::Error> {
        serde_json::from_slice(message.payload()).map_err(|e| plexus_core::Error::Decode {
            content_type: "application/json",
            reason: e.to_string(),
        })
    }
}

/// Where [`OrderPlaced`] events go.
#[derive(Clone)]
pub(super) enum Events {
    /// Published to a bus once the order is stored.
    Publish(Arc<dyn Publisher>),
    /// Written with the order in one transaction.
    Outbox(OrderLedger),
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Events::Publish(_) => f.write_str("Events::Publish"),
            Events::Outbox(ledger) => f.debug_tuple("Events::Outbox").field(ledger).finish(),
        }
    }
}

/// Publishes `event` to `publisher`.
pub(super) async fn publish(publisher: &dyn Publisher, event: OrderPlaced) -> Result<(), Status> {
    let message = event
        .to_message()
        .map_err(|e| Status::internal(format!("cannot build the OrderPlaced event: {e}")))?;
    publisher
        .publish(ORDER_PLACED_TOPIC, vec![message])
        .await
        .map_err(|e| {
            Status::unavailable(format!(
                "order {} is stored but its OrderPlaced event was not published: {e}",
                event.order_id
            ))
        })
}
