//! Subscribing: the queue of a group (or of a subscription of its own) is
//! declared and bound when the subscription is made, so that it receives
//! what is published from then on; a [`Member`] task consumes it once the
//! subscription is read.

use std::sync::Arc;
use std::task::Poll;

use lapin::types::{AMQPValue, LongString};
use plexus_core::bus::{BusError, SubscribeOptions, Subscription};
use tokio::sync::{Notify, mpsc};

use crate::bus::Shared;
use crate::link::quorum;
use crate::member::{Item, Member};
use crate::names::{group_queue, private_queue};

/// Joins `options.group` (or a group of one) on `topic`.
pub(crate) async fn subscribe(
    shared: Arc<Shared>,
    topic: &str,
    options: SubscribeOptions,
) -> Result<Subscription, BusError> {
    let prefetch = u16::try_from(options.max_in_flight).map_err(|_| {
        BusError::invalid(
            "max_in_flight",
            "RabbitMQ's prefetch is at most 65,535 unacknowledged deliveries per consumer",
        )
    })?;
    let config = &shared.config;
    let (queue, expiry) = match &options.group {
        Some(group) => (
            group_queue(&config.queue_prefix, topic, group),
            config.group_expiry,
        ),
        None => (
            private_queue(&config.queue_prefix),
            Some(config.private_expiry),
        ),
    };
    let mut arguments = quorum();
    let mut put = |name: &str, value: AMQPValue| {
        arguments.insert(name.into(), value);
    };
    put(
        "x-max-length",
        AMQPValue::LongLongInt(i64::try_from(config.max_queue_length).unwrap_or(i64::MAX)),
    );
    put(
        "x-overflow",
        AMQPValue::LongString(LongString::from("reject-publish")),
    );
    if let Some(dead) = &config.dead_letters {
        put(
            "x-dead-letter-exchange",
            AMQPValue::LongString(LongString::from(dead.exchange.as_str())),
        );
    }
    if let Some(expiry) = expiry {
        let millis = i64::try_from(expiry.as_millis()).unwrap_or(i64::MAX).max(1);
        put("x-expires", AMQPValue::LongLongInt(millis));
    }
    let member = Member {
        topic: Arc::from(topic),
        queue,
        arguments,
        prefetch,
        max_in_flight: options.max_in_flight,
        ack_deadline: options.ack_deadline,
        private: options.group.is_none(),
        wanted: Arc::new(Notify::new()),
        shared,
    };
    let doing = match &options.group {
        Some(group) => format!("joining group `{group}` of topic `{}`", member.topic),
        None => format!("subscribing to `{}`", member.topic),
    };
    let channel = member
        .join()
        .await
        .map_err(|reason| member.shared.error(&doing, reason))?;
    let (deliveries, mut received) = mpsc::channel::<Item>(options.max_in_flight);
    let wanted = Arc::clone(&member.wanted);
    let tasks = member.shared.tasks.clone();
    tasks.spawn(member.run(channel, deliveries));
    Ok(Subscription::new(futures::stream::poll_fn(move |cx| {
        loop {
            return match received.poll_recv(cx) {
                Poll::Ready(Some(Ok((_, slot)))) if slot.is_expired() => continue,
                Poll::Ready(Some(Ok((delivery, _)))) => Poll::Ready(Some(Ok(delivery))),
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => {
                    wanted.notify_one();
                    Poll::Pending
                }
            };
        }
    })))
}
