//! `topic_isolation`: a topic's messages reach only its subscribers.

use std::collections::BTreeSet;

use plexus_core::Message;
use plexus_core::bus::SubscribeOptions;

use crate::support::{Ctx, numbered};
use crate::{Backend, Outcome};

const EACH: usize = 20;
const TOPICS: usize = 3;

/// Three topics whose names extend one another (`t`, `t_x`, `tx`), 20
/// messages each plus a last marker: each subscriber gets exactly its
/// topic's messages, from its topic, and none of another's.
pub async fn topic_isolation(backend: &Backend) -> Outcome {
    let ctx = match Ctx::start(backend, "topic_isolation", &[]) {
        Ok(ctx) => ctx,
        Err(skipped) => return skipped,
    };
    let base = ctx.topic();
    let topics = [base.clone(), format!("{base}_x"), format!("{base}x")];
    let subscriber = ctx.subscriber().await;
    let mut subscriptions = Vec::new();
    for topic in &topics {
        subscriptions.push(
            ctx.subscribe(&*subscriber, topic, SubscribeOptions::default())
                .await,
        );
    }
    let publisher = ctx.publisher().await;
    // Message t * 1000 + i is the i-th of topic t; i == EACH is the marker.
    for round in 0..=EACH {
        for (t, topic) in topics.iter().enumerate() {
            let message: Message = numbered(ctx.scenario, t * 1000 + round, None, None);
            ctx.publish(&*publisher, topic, vec![message]).await;
        }
    }
    for (t, subscription) in subscriptions.iter_mut().enumerate() {
        let topic = &topics[t];
        let mut missing: BTreeSet<usize> = (0..=EACH).collect();
        while !missing.is_empty() {
            let waiting = format!(
                "{} of the {} messages of `{topic}`",
                missing.len(),
                EACH + 1
            );
            let delivery = ctx.next(subscription, waiting).await;
            let n = ctx.number(&delivery, TOPICS * 1000);
            let from = n / 1000;
            ctx.check(from == t, || {
                format!(
                    "a subscriber of `{topic}` received message {} of `{}`",
                    n % 1000,
                    topics[from]
                )
            });
            ctx.check(delivery.topic() == topic, || {
                format!(
                    "a delivery to a subscriber of `{topic}` says it came from `{}`",
                    delivery.topic()
                )
            });
            missing.remove(&(n % 1000));
            ctx.ack(delivery).await;
        }
    }
    Outcome::Passed
}
