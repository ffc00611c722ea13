//! The support agent: one canned answer per customer message, about the
//! order the message mentions.

use std::sync::Arc;
use std::time::Duration;

use plexus_rpc::client::Channel;
use tonic::{Code, Request};

use super::metrics::SupportMetrics;
use crate::orders::status_label;
use crate::orders::v1::orders_client::OrdersClient;
use crate::orders::v1::{GetOrderRequest, Order};

/// Answers customer messages; looks orders up when it has an orders client.
#[derive(Debug, Clone)]
pub(crate) struct Agent {
    pub(crate) orders: Option<OrdersClient<Channel>>,
    pub(crate) lookup_timeout: Duration,
    pub(crate) metrics: Arc<SupportMetrics>,
}

/// One answer: its text, and the order it is about (or empty).
pub(crate) struct Answer {
    pub(crate) text: String,
    pub(crate) order_id: String,
}

impl Agent {
    pub(crate) async fn answer(&mut self, message: &str) -> Answer {
        let Some(order_id) = mentioned_order(message) else {
            return Answer {
                text: "Thanks for your message. Which order is it about? Please mention its number, e.g. ord-1."
                    .to_owned(),
                order_id: String::new(),
            };
        };
        let text = match self.orders.as_mut() {
            None => {
                format!("Thanks, I have noted order {order_id}; an agent will follow up shortly.")
            }
            Some(orders) => {
                let mut request = Request::new(GetOrderRequest {
                    order_id: order_id.to_owned(),
                });
                request.set_timeout(self.lookup_timeout);
                match orders.get_order(request).await {
                    Ok(order) => describe(&order.into_inner()),
                    Err(status) if status.code() == Code::NotFound => {
                        format!(
                            "I can't find order {order_id}. Could you check the number on your confirmation?"
                        )
                    }
                    Err(status) => {
                        SupportMetrics::add(&self.metrics.lookups_failed);
                        tracing::warn!(%order_id, code = ?status.code(), message = status.message(), "order lookup failed");
                        format!(
                            "I can't look up order {order_id} right now; an agent will follow up shortly."
                        )
                    }
                }
            }
        };
        Answer {
            text,
            order_id: order_id.to_owned(),
        }
    }
}

fn describe(order: &Order) -> String {
    let units: u64 = order.items.iter().map(|i| u64::from(i.quantity)).sum();
    format!(
        "Order {} is {}: {units} item(s), ${}.{:02} in total.",
        order.order_id,
        status_label(order.status()),
        order.total_cents / 100,
        order.total_cents % 100
    )
}

/// The first order id (`ord-` and digits) in `text`.
pub(crate) fn mentioned_order(text: &str) -> Option<&str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .find(|word| {
            word.strip_prefix("ord-")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
}

#[cfg(test)]
mod tests {
    use super::mentioned_order;

    #[test]
    fn finds_the_first_order_id() {
        assert_eq!(
            mentioned_order("where is ord-42? and ord-7"),
            Some("ord-42")
        );
        assert_eq!(mentioned_order("(ord-1)."), Some("ord-1"));
        assert_eq!(mentioned_order("ord- ord-x word-12 ord-12a"), None);
        assert_eq!(mentioned_order("hello"), None);
    }
}
