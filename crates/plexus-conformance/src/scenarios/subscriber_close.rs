//! Members leaving: `continue_after_subscribe_close`,
//! `continue_after_errors` and `concurrent_close`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::join_all;
use plexus_core::Message;
use plexus_core::bus::{BusError, Delivery, SubscribeOptions};
use tokio::sync::watch;

use crate::outcome::Need;
use crate::support::{Crew, Ctx, Tally, numbered};
use crate::{Backend, Outcome};

/// The ack deadline of the groups here: deliveries left unanswered by a
/// member that left come back no later than this.
const DEADLINE: Duration = Duration::from_secs(2);

/// 5,000 messages consumed by 5 successive members of one group, each a
/// new subscriber handle: each of the first 4 acknowledges 1,000, holds 3
/// more unanswered and is dropped (every other one closed first, where
/// closing does not close the publisher too); the 5th gets the rest. None
/// is lost, and the held ones come back with a higher attempt.
pub async fn continue_after_subscribe_close(backend: &Backend) -> Outcome {
    const COUNT: usize = 5_000;
    const MEMBERS: usize = 5;
    const SHARE: usize = COUNT / MEMBERS;
    const HOLD: usize = 3;
    let ctx = match Ctx::start(
        backend,
        "continue_after_subscribe_close",
        &[Need::ConsumerGroups],
    ) {
        Ok(ctx) => ctx,
        Err(skipped) => return skipped,
    };
    let topic = ctx.topic();
    let group = ctx.group("successive");
    let options = SubscribeOptions::group(&group).ack_deadline(DEADLINE);
    let mut subscriber = ctx.subscriber().await;
    let mut subscription = ctx.subscribe(&*subscriber, &topic, options.clone()).await;
    let publisher = ctx.publisher().await;
    let messages: Vec<Message> = (0..COUNT)
        .map(|n| numbered(ctx.scenario, n, None, None))
        .collect();
    ctx.publish_all(&*publisher, &topic, &messages, 100).await;

    let mut tally = Tally::default();
    let mut held_back = BTreeMap::new();
    for member in 0..MEMBERS {
        if member > 0 {
            subscriber = ctx.subscriber().await;
            subscription = ctx.subscribe(&*subscriber, &topic, options.clone()).await;
        }
        let last = member == MEMBERS - 1;
        let mut acked = 0;
        let mut held: Vec<Delivery> = Vec::new();
        while if last {
            !tally.all_acked(COUNT)
        } else {
            held.len() < HOLD
        } {
            let waiting = format!("member {member} of `{group}`: {}", tally.describe(COUNT));
            let delivery = ctx.next(&mut subscription, waiting).await;
            let n = ctx.number(&delivery, COUNT);
            tally.deliver(n);
            if let Some(attempt) = held_back.remove(&n) {
                ctx.check(delivery.attempt() > attempt, || {
                    format!(
                        "message {n}, left unanswered as attempt {attempt} by a member that left, came back as attempt {}",
                        delivery.attempt()
                    )
                });
            }
            if last || acked < SHARE {
                ctx.ack(delivery).await;
                tally.ack(n);
                acked += 1;
            } else {
                held_back.insert(n, delivery.attempt());
                held.push(delivery);
            }
        }
        if !last && !backend.is_one_handle() && member % 2 == 1 {
            ctx.close_subscriber(&*subscriber).await;
        }
        drop(held);
    }
    ctx.check(held_back.is_empty(), || {
        format!(
            "messages left unanswered by members that left were acknowledged without coming back: {held_back:?}"
        )
    });
    Outcome::Passed
}

/// 3 members of a group, one after the other, each nack 100 deliveries
/// and leave; a 4th acknowledges all 100 messages, each with an attempt
/// past the nacks it had.
pub async fn continue_after_errors(backend: &Backend) -> Outcome {
    const COUNT: usize = 100;
    const FAILING: usize = 3;
    let ctx = match Ctx::start(backend, "continue_after_errors", &[Need::ConsumerGroups]) {
        Ok(ctx) => ctx,
        Err(skipped) => return skipped,
    };
    let topic = ctx.topic();
    let group = ctx.group("failing");
    let options = SubscribeOptions::group(&group).ack_deadline(DEADLINE);
    let mut subscriber = ctx.subscriber().await;
    let mut subscription = ctx.subscribe(&*subscriber, &topic, options.clone()).await;
    let publisher = ctx.publisher().await;
    let messages: Vec<Message> = (0..COUNT)
        .map(|n| numbered(ctx.scenario, n, None, None))
        .collect();
    ctx.publish_all(&*publisher, &topic, &messages, 25).await;

    let mut nacks: BTreeMap<usize, u32> = BTreeMap::new();
    for member in 0..=FAILING {
        if member > 0 {
            subscriber = ctx.subscriber().await;
            subscription = ctx.subscribe(&*subscriber, &topic, options.clone()).await;
        }
        if member < FAILING {
            for i in 0..COUNT {
                let waiting = format!("delivery {i} of {COUNT} to failing member {member}");
                let delivery = ctx.next(&mut subscription, waiting).await;
                let n = ctx.number(&delivery, COUNT);
                *nacks.entry(n).or_default() += 1;
                ctx.nack(delivery, Duration::ZERO).await;
            }
            continue;
        }
        let mut tally = Tally::default();
        while !tally.all_acked(COUNT) {
            let waiting = format!(
                "the member after the failing ones: {}",
                tally.describe(COUNT)
            );
            let delivery = ctx.next(&mut subscription, waiting).await;
            let n = ctx.number(&delivery, COUNT);
            let refused = nacks.get(&n).copied().unwrap_or(0);
            if !tally.delivered.contains_key(&n) {
                ctx.check(delivery.attempt() > refused, || {
                    format!(
                        "message {n} was nacked {refused} times, then delivered as attempt {}",
                        delivery.attempt()
                    )
                });
            }
            tally.deliver(n);
            ctx.ack(delivery).await;
            tally.ack(n);
        }
    }
    Outcome::Passed
}

/// Members leaving and subscribers closing at the same moment:
/// 1. 20 members of one group (on 4 handles) each hold 5 unanswered
///    deliveries of 200 messages and are all dropped at once; a new
///    member then gets all 200 (none lost).
/// 2. 10 subscriber handles with 3 busy subscriptions each are closed at
///    once: every close returns, every subscription ends, nothing panics
///    or hangs, and subscribing on a closed handle fails with
///    [`BusError::Closed`].
pub async fn concurrent_close(backend: &Backend) -> Outcome {
    const COUNT: usize = 200;
    const MEMBERS: usize = 20;
    const HOLD: usize = 5;
    let ctx = match Ctx::start(backend, "concurrent_close", &[Need::ConsumerGroups]) {
        Ok(ctx) => ctx,
        Err(skipped) => return skipped,
    };
    let topic = ctx.topic();
    let group = ctx.group("dropped");
    let options = SubscribeOptions::group(&group)
        .ack_deadline(DEADLINE)
        .max_in_flight(HOLD);
    let mut handles = Vec::new();
    for _ in 0..4 {
        handles.push(ctx.subscriber().await);
    }
    let (go, gate) = watch::channel(false);
    let mut crew = Crew::new(0usize);
    for member in 0..MEMBERS {
        let mut subscription = ctx
            .subscribe(&*handles[member % handles.len()], &topic, options.clone())
            .await;
        let held_count = crew.record();
        let mut gate = gate.clone();
        crew.spawn(async move {
            let mut held = Vec::new();
            while held.len() < HOLD {
                match subscription.next().await {
                    Some(Ok(delivery)) => held.push(delivery),
                    other => {
                        return Err(format!(
                            "member {member}: the subscription ended or failed while the subscriber is open: {:?}",
                            other.map(|r| r.map(|d| d.message().id().to_owned()))
                        ));
                    }
                }
                held_count.send_modify(|count| *count += 1);
            }
            let _ = gate.wait_for(|go| *go).await;
            drop(subscription);
            drop(held);
            Ok(())
        });
    }
    let publisher = ctx.publisher().await;
    let messages: Vec<Message> = (0..COUNT)
        .map(|n| numbered(ctx.scenario, n, None, None))
        .collect();
    ctx.publish_all(&*publisher, &topic, &messages, 50).await;
    crew.until(
        &ctx,
        &format!("{MEMBERS} members each holding {HOLD} unanswered deliveries"),
        |held| *held == MEMBERS * HOLD,
        |held| format!("{held} deliveries held"),
    )
    .await;
    go.send_replace(true);
    crew.join(&ctx, "dropping the members at once").await;

    let mut subscription = ctx.subscribe(&*handles[0], &topic, options.clone()).await;
    let mut tally = Tally::default();
    while !tally.all_acked(COUNT) {
        let waiting = format!(
            "the member after the dropped ones: {}",
            tally.describe(COUNT)
        );
        let delivery = ctx.next(&mut subscription, waiting).await;
        let n = ctx.number(&delivery, COUNT);
        tally.deliver(n);
        ctx.ack(delivery).await;
        tally.ack(n);
    }
    drop(subscription);
    drop(handles);

    close_at_once(&ctx, &topic, &*publisher).await;
    Outcome::Passed
}

/// Part 2 of `concurrent_close`.
async fn close_at_once(ctx: &Ctx<'_>, topic: &str, publisher: &dyn plexus_core::bus::Publisher) {
    const HANDLES: usize = 10;
    const PER_HANDLE: usize = 3;
    let mut handles = Vec::new();
    let mut crew = Crew::new(0usize);
    for _ in 0..HANDLES {
        let subscriber = ctx.subscriber().await;
        for _ in 0..PER_HANDLE {
            let mut subscription = ctx
                .subscribe(&*subscriber, topic, SubscribeOptions::default())
                .await;
            let busy = crew.record();
            crew.spawn(async move {
                // Runs until the close ends the stream (an error may come
                // first); acknowledging may fail once closed.
                let mut first = true;
                while let Some(next) = subscription.next().await {
                    if let Ok(delivery) = next {
                        let _ = delivery.ack().await;
                        if std::mem::take(&mut first) {
                            busy.send_modify(|count| *count += 1);
                        }
                    }
                }
                Ok(())
            });
        }
        handles.push(subscriber);
    }
    let batch: Vec<Message> = (0..10)
        .map(|n| numbered(ctx.scenario, n, None, None))
        .collect();
    ctx.publish(publisher, topic, batch).await;
    crew.until(
        ctx,
        "every subscription busy (one delivery each) before the close",
        |busy| *busy == HANDLES * PER_HANDLE,
        |busy| {
            format!(
                "{busy} of {} subscriptions have had a delivery",
                HANDLES * PER_HANDLE
            )
        },
    )
    .await;
    let closes = join_all(handles.iter().map(|h| {
        let h = Arc::clone(h);
        async move { h.close().await }
    }));
    let results = ctx.bounded("closing 10 subscribers at once", closes).await;
    for result in results {
        if let Err(e) = result {
            ctx.fail(format!("closing a subscriber while others close: {e}"));
        }
    }
    crew.join(ctx, "every subscription ending after its subscriber closed")
        .await;
    let after = ctx
        .bounded(
            "subscribing on a closed subscriber",
            handles[0].subscribe(topic, SubscribeOptions::default()),
        )
        .await;
    ctx.expect_error(
        "subscribing on a closed subscriber",
        after,
        "BusError::Closed",
        |e| matches!(e, BusError::Closed { .. }),
    );
}
