//! `publish_subscribe_in_order`: per-key order within a group, across
//! nacks and redeliveries.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use plexus_core::Message;
use plexus_core::bus::SubscribeOptions;

use crate::outcome::Need;
use crate::support::{Crew, Ctx, Tally, consume, number_of, numbered, seq_of};
use crate::{Backend, Outcome};

const COUNT: usize = 1_000;
const KEYS: usize = 16;

/// What the members saw.
#[derive(Default)]
struct Seen {
    /// Per key, the place of the next message the group may be handed.
    next: BTreeMap<usize, usize>,
    tally: Tally,
    nacked: usize,
}

/// 1,000 messages over 16 keys, published in batches of 50, consumed by 4
/// members of one group (1 subscription without consumer groups); the
/// first delivery of every 7th message is nacked (with a 20 ms delay
/// where the backend honours delays). Each key's messages reach the group
/// in publish order: a delivery is always the key's next unacknowledged
/// message, a nacked one comes back before anything after it.
pub async fn publish_subscribe_in_order(backend: &Backend) -> Outcome {
    let ctx = match Ctx::start(backend, "publish_subscribe_in_order", &[Need::PerKeyOrder]) {
        Ok(ctx) => ctx,
        Err(skipped) => return skipped,
    };
    let delay = if backend.features().nack_delay {
        Duration::from_millis(20)
    } else {
        Duration::ZERO
    };
    let topic = ctx.topic();
    let (members, options) = if backend.features().consumer_groups {
        (4, SubscribeOptions::group(ctx.group("ordered")))
    } else {
        (1, SubscribeOptions::default())
    };
    let mut crew = Crew::new(Seen::default());
    // Kept open while their subscriptions are read.
    let mut handles = Vec::new();
    for member in 0..members {
        let subscriber = ctx.subscriber().await;
        let subscription = ctx.subscribe(&*subscriber, &topic, options.clone()).await;
        handles.push(subscriber);
        let record = crew.record();
        let who = format!("member {member}");
        crew.spawn(consume(subscription, who.clone(), move |delivery| {
            let record = Arc::clone(&record);
            let who = who.clone();
            async move {
                let message = delivery.message();
                let (Some(n), Some(seq)) = (number_of(message), seq_of(message)) else {
                    return Err(format!("{who}: received message `{}` that this scenario did not publish", message.id()));
                };
                let key = n % KEYS;
                let refuse = n % 7 == 3 && delivery.attempt() == 1;
                let mut out_of_order = None;
                record.send_modify(|seen| {
                    seen.tally.deliver(n);
                    let next = seen.next.entry(key).or_default();
                    if seq != *next {
                        out_of_order = Some(*next);
                    } else if !refuse {
                        // Before the ack: the key's next message may be
                        // handed to another member as soon as it lands.
                        *next += 1;
                    }
                });
                if let Some(expected) = out_of_order {
                    return Err(format!(
                        "{who}: key-{key} delivered its message {seq} (attempt {}) while its message {expected} was next",
                        delivery.attempt()
                    ));
                }
                if refuse {
                    delivery.nack(delay).await.map_err(|e| format!("{who}: nacking message {n}: {e}"))?;
                    record.send_modify(|seen| seen.nacked += 1);
                } else {
                    delivery.ack().await.map_err(|e| format!("{who}: acknowledging message {n}: {e}"))?;
                    record.send_modify(|seen| seen.tally.ack(n));
                }
                Ok(true)
            }
        }));
    }
    let publisher = ctx.publisher().await;
    let messages: Vec<Message> = (0..COUNT)
        .map(|n| {
            let key = format!("key-{}", n % KEYS);
            numbered(ctx.scenario, n, Some(&key), Some(n / KEYS))
        })
        .collect();
    ctx.publish_all(&*publisher, &topic, &messages, 50).await;
    crew.until(
        &ctx,
        &format!("all {COUNT} messages over {KEYS} keys acknowledged in order"),
        |seen| seen.tally.all_acked(COUNT),
        |seen| format!("{}; {} nacked", seen.tally.describe(COUNT), seen.nacked),
    )
    .await;
    let nacked = crew.read(|seen| seen.nacked);
    let expected = (0..COUNT).filter(|n| n % 7 == 3).count();
    ctx.check(nacked == expected, || {
        format!(
            "{nacked} deliveries were nacked, expected {expected} (the first of every 7th message)"
        )
    });
    Outcome::Passed
}
