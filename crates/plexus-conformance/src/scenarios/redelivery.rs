//! Redelivery: `resend_on_error` (a nacked message comes back) and
//! `no_ack` (an unanswered one comes back after the ack deadline, an
//! acknowledged one never).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use plexus_core::Message;
use plexus_core::bus::{Delivery, SubscribeOptions};
use tokio::time::Instant;

use crate::support::{Ctx, numbered};
use crate::{Backend, Outcome};

/// Each of 100 messages is nacked on its first 2 deliveries and
/// acknowledged on the third: all 100 arrive, each exactly 3 times, with
/// [`Delivery::attempt`] 1, 2, 3; with
/// [`Features::nack_delay`](plexus_core::bus::Features::nack_delay) the
/// redelivery comes no sooner than the nack's delay (100 ms).
pub async fn resend_on_error(backend: &Backend) -> Outcome {
    const COUNT: usize = 100;
    const REFUSALS: usize = 2;
    let ctx = match Ctx::start(backend, "resend_on_error", &[]) {
        Ok(ctx) => ctx,
        Err(skipped) => return skipped,
    };
    let delay = if backend.features().nack_delay {
        Duration::from_millis(100)
    } else {
        Duration::ZERO
    };
    let topic = ctx.topic();
    let subscriber = ctx.subscriber().await;
    let mut subscription = ctx
        .subscribe(&*subscriber, &topic, SubscribeOptions::default())
        .await;
    let publisher = ctx.publisher().await;
    let messages: Vec<Message> = (0..COUNT)
        .map(|n| numbered(ctx.scenario, n, None, None))
        .collect();
    ctx.publish_all(&*publisher, &topic, &messages, 20).await;

    let mut seen: BTreeMap<usize, (u32, Instant)> = BTreeMap::new();
    let mut acked = BTreeSet::new();
    while acked.len() < COUNT {
        let waiting = format!(
            "{} of {COUNT} messages to be acknowledged ({} deliveries so far)",
            COUNT - acked.len(),
            seen.values()
                .map(|(times, _)| *times as usize)
                .sum::<usize>()
        );
        let delivery = ctx.next(&mut subscription, waiting).await;
        let n = ctx.number(&delivery, COUNT);
        ctx.check(!acked.contains(&n), || {
            format!(
                "message {n} was delivered again (attempt {}) after its third delivery was acknowledged",
                delivery.attempt()
            )
        });
        let (times, last_nack) = seen.entry(n).or_insert((0, Instant::now()));
        *times += 1;
        ctx.check(delivery.attempt() == *times, || {
            format!(
                "message {n} arrived for the {} time but says attempt {}",
                times,
                delivery.attempt()
            )
        });
        if *times > 1 && !delay.is_zero() {
            let waited = last_nack.elapsed();
            ctx.check(waited >= delay, || {
                format!(
                    "message {n} was nacked with a delay of {delay:?} but came back after {waited:?} (the backend declares nack_delay)"
                )
            });
        }
        if (*times as usize) <= REFUSALS {
            *last_nack = Instant::now();
            ctx.nack(delivery, delay).await;
        } else {
            ctx.ack(delivery).await;
            acked.insert(n);
        }
    }
    Outcome::Passed
}

/// With a 200 ms ack deadline: of two messages, the one acknowledged at
/// once is never delivered again, the one left unanswered is, after the
/// deadline (not sooner than 3/4 of it), with its attempt one higher, and
/// again after the next deadline; acknowledged then, it is not delivered
/// again either.
pub async fn no_ack(backend: &Backend) -> Outcome {
    const DEADLINE: Duration = Duration::from_millis(200);
    let ctx = match Ctx::start(backend, "no_ack", &[]) {
        Ok(ctx) => ctx,
        Err(skipped) => return skipped,
    };
    let topic = ctx.topic();
    let subscriber = ctx.subscriber().await;
    let options = SubscribeOptions::default().ack_deadline(DEADLINE);
    let mut subscription = ctx.subscribe(&*subscriber, &topic, options).await;
    let publisher = ctx.publisher().await;
    let batch = vec![
        numbered(ctx.scenario, 0, None, None),
        numbered(ctx.scenario, 1, None, None),
    ];
    ctx.publish(&*publisher, &topic, batch).await;

    // Answers of the held deliveries are never given; they are kept (not
    // dropped) until the end so that nothing answers them.
    let mut held: Vec<Delivery> = Vec::new();
    let mut last_held = None;
    let mut acked_first = false;
    while !(acked_first && last_held.is_some()) {
        let delivery = ctx
            .next(&mut subscription, "the first delivery of messages 0 and 1")
            .await;
        match ctx.number(&delivery, 2) {
            0 if !acked_first => {
                ctx.ack(delivery).await;
                acked_first = true;
            }
            1 if last_held.is_none() => {
                last_held = Some((Instant::now(), delivery.attempt()));
                held.push(delivery);
            }
            n => ctx.fail(format!(
                "message {n} was delivered again (attempt {}) within the ack deadline of {DEADLINE:?}",
                delivery.attempt()
            )),
        }
    }
    // Two ack deadlines of message 1: message 0, acknowledged before the
    // first of them began, must not show up.
    for round in 1..=2 {
        let waiting = format!(
            "redelivery {round} of unanswered message 1 after the ack deadline of {DEADLINE:?}"
        );
        let delivery = ctx.next(&mut subscription, waiting).await;
        let (since, attempt) = last_held.expect("message 1 was delivered");
        match ctx.number(&delivery, 2) {
            0 => ctx.fail(format!(
                "message 0 was acknowledged and delivered again (attempt {})",
                delivery.attempt()
            )),
            _ => {
                let waited = since.elapsed();
                ctx.check(waited >= DEADLINE.mul_f32(0.75), || {
                    format!(
                        "unanswered message 1 came back after {waited:?}, before its ack deadline of {DEADLINE:?}"
                    )
                });
                ctx.check(delivery.attempt() == attempt + 1, || {
                    format!(
                        "message 1 came back as attempt {}, expected {} (one more than its last delivery)",
                        delivery.attempt(),
                        attempt + 1
                    )
                });
                last_held = Some((Instant::now(), delivery.attempt()));
                if round == 2 {
                    ctx.ack(delivery).await;
                } else {
                    held.push(delivery);
                }
            }
        }
    }
    // Message 1 is acknowledged now: a later message arrives, and neither
    // 0 nor 1 before it.
    ctx.publish(
        &*publisher,
        &topic,
        vec![numbered(ctx.scenario, 2, None, None)],
    )
    .await;
    let delivery = ctx
        .next(&mut subscription, "message 2, published last")
        .await;
    let n = ctx.number(&delivery, 3);
    ctx.check(n == 2, || {
        format!(
            "message {n} was acknowledged and delivered again (attempt {})",
            delivery.attempt()
        )
    });
    ctx.ack(delivery).await;
    drop(held);
    Outcome::Passed
}
