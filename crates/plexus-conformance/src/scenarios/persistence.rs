//! What a backend keeps: `new_subscriber_receives_old_messages` (replay)
//! and `durable_across_restart` (persistence).

use std::collections::BTreeMap;

use plexus_core::Message;
use plexus_core::bus::{Delivery, SubscribeOptions, Subscription};

use crate::outcome::Need;
use crate::support::{Ctx, Tally, numbered};
use crate::{Backend, Outcome};

/// 50 messages published before anyone subscribed: a subscription
/// starting at the earliest message gets all of them; one starting at
/// new messages gets only what is published after it. With consumer
/// groups, a named group started at the earliest gets them all too, and a
/// later member of that group asking for the earliest continues where the
/// group is instead of starting over. (All of them subscribe before any
/// acknowledges: a backend may drop what every group acknowledged, and
/// `Earliest` means the earliest message still retained.)
pub async fn new_subscriber_receives_old_messages(backend: &Backend) -> Outcome {
    const OLD: usize = 50;
    let ctx = match Ctx::start(
        backend,
        "new_subscriber_receives_old_messages",
        &[Need::Replay],
    ) {
        Ok(ctx) => ctx,
        Err(skipped) => return skipped,
    };
    let topic = ctx.topic();
    let publisher = ctx.publisher().await;
    let old: Vec<Message> = (0..OLD)
        .map(|n| numbered(ctx.scenario, n, None, None))
        .collect();
    ctx.publish_all(&*publisher, &topic, &old, 10).await;

    // Every reader of the old messages subscribes before any of them
    // acknowledges: a backend may drop what all its groups acknowledged.
    let subscriber = ctx.subscriber().await;
    let earliest = SubscribeOptions::default().from_earliest();
    let mut replaying = ctx.subscribe(&*subscriber, &topic, earliest).await;
    let mut named = None;
    if backend.features().consumer_groups {
        let name = ctx.group("replaying");
        let options = SubscribeOptions::group(&name).from_earliest();
        let first = ctx.subscribe(&*subscriber, &topic, options.clone()).await;
        named = Some((name, options, first));
    }
    let mut fresh = ctx
        .subscribe(&*subscriber, &topic, SubscribeOptions::default())
        .await;
    take_all(
        &ctx,
        &mut replaying,
        0..OLD,
        "a subscription from the earliest",
    )
    .await;
    let mut group = None;
    if let Some((name, options, mut first)) = named {
        take_all(
            &ctx,
            &mut first,
            0..OLD,
            &format!("group `{name}` from the earliest"),
        )
        .await;
        drop(first);
        let second = ctx.subscribe(&*subscriber, &topic, options).await;
        group = Some((name, second));
    }

    ctx.publish(
        &*publisher,
        &topic,
        vec![numbered(ctx.scenario, OLD, None, None)],
    )
    .await;
    take_all(
        &ctx,
        &mut fresh,
        OLD..OLD + 1,
        "a subscription from new messages (made after the old ones)",
    )
    .await;
    take_all(
        &ctx,
        &mut replaying,
        OLD..OLD + 1,
        "the subscription from the earliest, for a new message",
    )
    .await;
    if let Some((name, mut second)) = group {
        let what =
            format!("a later member of group `{name}`, which had acknowledged the old messages");
        take_all(&ctx, &mut second, OLD..OLD + 1, &what).await;
    }
    Outcome::Passed
}

/// Receives and acknowledges until every number of `range` came, failing
/// on any other number (`who` names the receiver).
async fn take_all(
    ctx: &Ctx<'_>,
    subscription: &mut Subscription,
    range: std::ops::Range<usize>,
    who: &str,
) {
    let mut tally = Tally::default();
    let expected = range.len();
    while tally.acked.len() < expected {
        let delivery = ctx
            .next(
                subscription,
                format!("{who}: messages {range:?}: {} received", tally.acked.len()),
            )
            .await;
        let n = ctx.number(&delivery, usize::MAX);
        ctx.check(range.contains(&n), || {
            format!("{who}: received message {n}, expected only messages {range:?}")
        });
        tally.deliver(n);
        ctx.ack(delivery).await;
        tally.ack(n);
    }
}

/// For persistent backends with a reopen hook: 100 messages published to
/// a group; the even ones acknowledged, the odd ones received and left
/// unanswered; handles closed and the backend reopened. A new member of
/// the group then gets every odd message and none of the even ones, nor
/// does it get them before a message published after the restart. Then,
/// where the backend gives a crash child command, a child process
/// publishing and acknowledging is killed with SIGKILL mid-stream and
/// nothing it was told was published or acknowledged is lost (see
/// [`crash_child`](crate::crash_child)).
pub async fn durable_across_restart(backend: &Backend) -> Outcome {
    const COUNT: usize = 100;
    let ctx = match Ctx::start(
        backend,
        "durable_across_restart",
        &[Need::Persistent, Need::Reopen, Need::ConsumerGroups],
    ) {
        Ok(ctx) => ctx,
        Err(skipped) => return skipped,
    };
    let topic = ctx.topic();
    let group = ctx.group("durable");
    let options = SubscribeOptions::group(&group).max_in_flight(COUNT);
    let subscriber = ctx.subscriber().await;
    let mut subscription = ctx.subscribe(&*subscriber, &topic, options.clone()).await;
    let publisher = ctx.publisher().await;
    let messages: Vec<Message> = (0..COUNT)
        .map(|n| numbered(ctx.scenario, n, None, None))
        .collect();
    ctx.publish_all(&*publisher, &topic, &messages, 10).await;

    let mut before = Tally::default();
    let mut held: BTreeMap<usize, Delivery> = BTreeMap::new();
    while before.acked.len() + held.len() < COUNT {
        let waiting = format!(
            "the first delivery of each message before the restart: {} acknowledged, {} held",
            before.acked.len(),
            held.len()
        );
        let delivery = ctx.next(&mut subscription, waiting).await;
        let n = ctx.number(&delivery, COUNT);
        before.deliver(n);
        if n % 2 == 0 {
            ctx.ack(delivery).await;
            before.ack(n);
        } else {
            held.insert(n, delivery);
        }
    }
    drop(subscription);
    ctx.close_subscriber(&*subscriber).await;
    ctx.close_publisher(&*publisher).await;
    drop(held);
    drop((subscriber, publisher));
    match ctx
        .bounded("reopening the backend", backend.run_reopen())
        .await
    {
        Some(Ok(())) => {}
        Some(Err(e)) => ctx.fail(format!("reopening the backend: {e}")),
        None => ctx.fail("no reopen hook, although the scenario was not skipped"),
    }

    let subscriber = ctx.subscriber().await;
    let mut subscription = ctx.subscribe(&*subscriber, &topic, options).await;
    let publisher = ctx.publisher().await;
    ctx.publish(
        &*publisher,
        &topic,
        vec![numbered(ctx.scenario, COUNT, None, None)],
    )
    .await;
    let mut after = Tally::default();
    let odd = COUNT / 2;
    while after.acked.len() < odd + 1 {
        let waiting = format!(
            "after the restart, the {odd} unacknowledged messages and 1 new one: {}",
            after.describe(COUNT + 1)
        );
        let delivery = ctx.next(&mut subscription, waiting).await;
        let n = ctx.number(&delivery, COUNT + 1);
        ctx.check(n % 2 == 1 || n == COUNT, || {
            format!(
                "message {n} was acknowledged before the restart and delivered again after it (attempt {})",
                delivery.attempt()
            )
        });
        after.deliver(n);
        ctx.ack(delivery).await;
        after.ack(n);
    }
    drop(subscription);
    ctx.close_subscriber(&*subscriber).await;
    ctx.close_publisher(&*publisher).await;
    crate::crash::killed_mid_stream(&ctx, backend).await;
    Outcome::Passed
}
