//! `exclusive_groups`: a group one member holds at a time
//! ([`SubscribeOptions::exclusive`]), read in the topic's order.

use std::time::Duration;

use plexus_core::Message;
use plexus_core::bus::{BusError, Delivery, Publisher, SubscribeOptions, Subscriber, Subscription};
use tokio::time::timeout;

use crate::outcome::Need;
use crate::support::{Ctx, numbered};
use crate::{Backend, Outcome};

/// How long a member that must get nothing is watched.
const QUIET: Duration = Duration::from_millis(200);

/// The properties of exclusive groups, each on a topic of its own:
///
/// 1. One member reads the topic in order; a member of another subscriber
///    stands by, getting nothing, and when the first goes takes over
///    where its acknowledgements left off: what it held unanswered comes
///    again, then the rest, in order.
/// 2. A nack delivers that message and every one after it again, in
///    order, as the next attempt.
/// 3. A delivery unanswered past its ack deadline comes again with what
///    followed it, even what was acknowledged.
/// 4. A member gets its whole `max_in_flight` unacknowledged, across
///    however many reads the backend makes, and nothing past it.
/// 5. A shared member of a group held exclusively is refused
///    (`InvalidOption` naming `exclusive`); another group of the topic is
///    not affected.
pub async fn exclusive_groups(backend: &Backend) -> Outcome {
    let ctx = match Ctx::start(
        backend,
        "exclusive_groups",
        &[Need::ConsumerGroups, Need::Replay, Need::ExclusiveGroups],
    ) {
        Ok(ctx) => ctx,
        Err(skipped) => return skipped,
    };
    let publisher = ctx.publisher().await;
    let subscriber = ctx.subscriber().await;
    takeover(&ctx, &*publisher, &*subscriber).await;
    nack(&ctx, &*publisher, &*subscriber).await;
    deadline(&ctx, &*publisher, &*subscriber).await;
    max_in_flight(&ctx, &*publisher, &*subscriber).await;
    shared_refused(&ctx, &*publisher, &*subscriber).await;
    ctx.close_subscriber(&*subscriber).await;
    ctx.close_publisher(&*publisher).await;
    Outcome::Passed
}

/// An exclusive member of a fresh group, from the earliest message.
fn exclusive(ctx: &Ctx<'_>, group: &str) -> SubscribeOptions {
    SubscribeOptions::group(ctx.group(group))
        .exclusive()
        .from_earliest()
        .max_in_flight(50)
}

fn messages(ctx: &Ctx<'_>, count: usize) -> Vec<Message> {
    let keys = ["a", "b", "c"];
    (0..count)
        .map(|n| numbered(ctx.scenario, n, Some(keys[n % keys.len()]), None))
        .collect()
}

/// The next delivery, whose number must be `expected`.
async fn expect(
    ctx: &Ctx<'_>,
    subscription: &mut Subscription,
    expected: usize,
    count: usize,
    what: &str,
) -> Delivery {
    let delivery = ctx
        .next(subscription, format!("message {expected} ({what})"))
        .await;
    let n = ctx.number(&delivery, count);
    ctx.check(n == expected, || {
        format!("{what}: expected message {expected}, got {n}")
    });
    delivery
}

/// Takes `from..to`, in order, acknowledging each.
async fn take_acking(
    ctx: &Ctx<'_>,
    subscription: &mut Subscription,
    from: usize,
    to: usize,
    count: usize,
    what: &str,
) {
    for expected in from..to {
        let delivery = expect(ctx, subscription, expected, count, what).await;
        ctx.ack(delivery).await;
    }
}

/// Fails when `subscription` delivers anything within [`QUIET`].
async fn nothing(ctx: &Ctx<'_>, subscription: &mut Subscription, what: &str) {
    use futures::StreamExt as _;
    if let Ok(item) = timeout(QUIET, subscription.next()).await {
        ctx.fail(format!(
            "{what}: expected nothing within {QUIET:?}, got {:?}",
            item.map(|i| i.map(|d| d.message().id().to_owned()))
        ));
    }
}

async fn takeover(ctx: &Ctx<'_>, publisher: &dyn Publisher, subscriber: &dyn Subscriber) {
    const COUNT: usize = 120;
    let topic = ctx.topic();
    ctx.publish_all(publisher, &topic, &messages(ctx, COUNT), 30)
        .await;
    let options = exclusive(ctx, "relay");
    let mut first = ctx.subscribe(subscriber, &topic, options.clone()).await;
    take_acking(ctx, &mut first, 0, 70, COUNT, "the holder").await;
    let second_subscriber = ctx.subscriber().await;
    let mut second = ctx.subscribe(&*second_subscriber, &topic, options).await;
    nothing(ctx, &mut second, "a member standing by").await;
    let mut unanswered = Vec::new();
    for expected in 70..80 {
        unanswered.push(expect(ctx, &mut first, expected, COUNT, "the holder").await);
    }
    drop(first);
    take_acking(ctx, &mut second, 70, COUNT, COUNT, "the member taking over").await;
    drop(unanswered);
    drop(second);
    // A handle of its own, unless the backend has one handle for all.
    if !ctx.backend.is_one_handle() {
        ctx.close_subscriber(&*second_subscriber).await;
    }
}

async fn nack(ctx: &Ctx<'_>, publisher: &dyn Publisher, subscriber: &dyn Subscriber) {
    const COUNT: usize = 20;
    let topic = ctx.topic();
    ctx.publish_all(publisher, &topic, &messages(ctx, COUNT), COUNT)
        .await;
    let mut member = ctx
        .subscribe(subscriber, &topic, exclusive(ctx, "nack"))
        .await;
    take_acking(ctx, &mut member, 0, 5, COUNT, "before the nack").await;
    // 5 and 6 are taken; 6 is acknowledged, 5 sent back.
    let fifth = expect(ctx, &mut member, 5, COUNT, "before the nack").await;
    let sixth = expect(ctx, &mut member, 6, COUNT, "before the nack").await;
    ctx.ack(sixth).await;
    ctx.nack(fifth, Duration::from_millis(50)).await;
    for expected in 5..COUNT {
        let delivery = expect(ctx, &mut member, expected, COUNT, "after the nack").await;
        let attempt = if expected <= 6 { 2 } else { 1 };
        ctx.check(delivery.attempt() == attempt, || {
            format!(
                "after the nack, message {expected}: expected attempt {attempt}, got {}",
                delivery.attempt()
            )
        });
        ctx.ack(delivery).await;
    }
}

async fn deadline(ctx: &Ctx<'_>, publisher: &dyn Publisher, subscriber: &dyn Subscriber) {
    const COUNT: usize = 3;
    let topic = ctx.topic();
    ctx.publish_all(publisher, &topic, &messages(ctx, COUNT), COUNT)
        .await;
    let options = exclusive(ctx, "deadline").ack_deadline(Duration::from_millis(200));
    let mut member = ctx.subscribe(subscriber, &topic, options).await;
    // 0 is held unanswered (its acker alive); 1 and 2 are acknowledged.
    let unanswered = expect(ctx, &mut member, 0, COUNT, "before the deadline").await;
    take_acking(ctx, &mut member, 1, COUNT, COUNT, "before the deadline").await;
    // At 0's deadline all three come again, in order.
    for expected in 0..COUNT {
        let delivery = expect(ctx, &mut member, expected, COUNT, "after the deadline").await;
        ctx.check(delivery.attempt() == 2, || {
            format!(
                "after the deadline, message {expected}: expected attempt 2, got {}",
                delivery.attempt()
            )
        });
        ctx.ack(delivery).await;
    }
    drop(unanswered);
}

async fn max_in_flight(ctx: &Ctx<'_>, publisher: &dyn Publisher, subscriber: &dyn Subscriber) {
    const COUNT: usize = 1200;
    const IN_FLIGHT: usize = 1000;
    let topic = ctx.topic();
    ctx.publish_all(publisher, &topic, &messages(ctx, COUNT), 100)
        .await;
    // More in flight than one read of a database takes, none acknowledged
    // until all of them came; no deadline ends the round meanwhile.
    let options = exclusive(ctx, "in_flight")
        .max_in_flight(IN_FLIGHT)
        .ack_deadline(Duration::from_secs(600));
    let mut member = ctx.subscribe(subscriber, &topic, options).await;
    let mut held = Vec::with_capacity(IN_FLIGHT);
    for expected in 0..IN_FLIGHT {
        held.push(expect(ctx, &mut member, expected, COUNT, "unacknowledged").await);
    }
    nothing(ctx, &mut member, "past max_in_flight").await;
    for delivery in held {
        ctx.ack(delivery).await;
    }
    take_acking(ctx, &mut member, IN_FLIGHT, COUNT, COUNT, "after the acks").await;
}

async fn shared_refused(ctx: &Ctx<'_>, publisher: &dyn Publisher, subscriber: &dyn Subscriber) {
    let topic = ctx.topic();
    ctx.publish_all(publisher, &topic, &messages(ctx, 1), 1)
        .await;
    let options = exclusive(ctx, "held");
    let Some(group) = options.group.clone() else {
        ctx.fail("an exclusive member's options name no group")
    };
    let mut holder = ctx.subscribe(subscriber, &topic, options).await;
    let taken = expect(ctx, &mut holder, 0, 1, "the holder").await;
    ctx.ack(taken).await;
    let refused = subscriber
        .subscribe(&topic, SubscribeOptions::group(&group))
        .await
        .map(|_| ());
    ctx.expect_error(
        "a shared member of an exclusive group",
        refused,
        "InvalidOption naming `exclusive`",
        |e| {
            matches!(
                e,
                BusError::InvalidOption {
                    option: "exclusive",
                    ..
                }
            )
        },
    );
    // Another group of the topic is not affected.
    let _other = ctx
        .subscribe(
            subscriber,
            &topic,
            SubscribeOptions::group(ctx.group("other")),
        )
        .await;
}
