//! A stand-in for a foreign client, to check the `cloudevents_interop`
//! scenario itself: another handle on the backend's in-memory bus, which
//! may drop the messages' subject on the way (a binding that forgets an
//! attribute).

use std::sync::Arc;

use futures::StreamExt;
use plexus_conformance::{ForeignClient, Reading};
use plexus_core::Message;
use plexus_core::bus::{BoxFuture, BusError, Publisher, SubscribeOptions, Subscriber};

pub struct StandIn {
    pub publisher: Arc<dyn Publisher>,
    pub subscriber: Arc<dyn Subscriber>,
    pub drops_subject: bool,
}

impl StandIn {
    fn mangle(drop_subject: bool, message: Message) -> Message {
        if !drop_subject {
            return message;
        }
        let mut parts = message.into_parts();
        parts.subject = None;
        Message::from_parts(parts).expect("still valid")
    }
}

impl ForeignClient for StandIn {
    fn name(&self) -> String {
        "a stand-in client".to_owned()
    }

    fn publish(
        &self,
        topic: &str,
        messages: Vec<Message>,
    ) -> BoxFuture<'static, Result<(), BusError>> {
        let (publisher, topic, drop) = (
            Arc::clone(&self.publisher),
            topic.to_owned(),
            self.drops_subject,
        );
        Box::pin(async move {
            let messages = messages
                .into_iter()
                .map(|m| Self::mangle(drop, m))
                .collect();
            publisher.publish(&topic, messages).await
        })
    }

    fn read(&self, topic: &str, count: usize) -> BoxFuture<'static, Result<Reading, BusError>> {
        let (subscriber, topic, drop) = (
            Arc::clone(&self.subscriber),
            topic.to_owned(),
            self.drops_subject,
        );
        Box::pin(async move {
            let mut subscription = subscriber
                .subscribe(&topic, SubscribeOptions::default())
                .await?;
            let reading: Reading = Box::pin(async move {
                let mut read = Vec::new();
                while read.len() < count {
                    let Some(delivery) = subscription.next().await else {
                        break;
                    };
                    let delivery = delivery?;
                    read.push(Self::mangle(drop, delivery.message().clone()));
                    delivery.ack().await?;
                }
                Ok(read)
            });
            Ok(reading)
        })
    }
}
