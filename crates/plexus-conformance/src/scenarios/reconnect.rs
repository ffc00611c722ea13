//! `reconnect`: the broker restarted mid-stream.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use plexus_core::Message;
use plexus_core::bus::{SubscribeOptions, Subscriber};
use tokio::time::Instant;

use crate::outcome::Need;
use crate::support::{Crew, Ctx, Tally, number_of, numbered};
use crate::{Backend, Outcome};

const COUNT: usize = 10_000;
const BATCH: usize = 100;
const MEMBERS: usize = 2;
const MAX_IN_FLIGHT: usize = 256;
/// How long a member or publisher waits before trying again after an
/// error while the broker is away.
const RETRY: Duration = Duration::from_millis(100);

/// For broker backends with a restart hook: 10,000 messages published in
/// batches of 100 to a group of two members; the broker is restarted
/// once a third and once half of them are published. A publish that
/// fails while the broker is away is tried again, a subscription that
/// fails or ends is made again (the scenario's bound limits both). Every
/// message whose publish returned Ok is delivered to the group and
/// acknowledged; redeliveries are allowed (an ack may be lost with the
/// broker), losses are not. An ack that fails while the broker goes away
/// has an unknown outcome where the broker does not confirm acks (AMQP):
/// its message counts as answered, and such failures are bounded by the
/// deliveries the members can hold when the broker goes (in flight ×
/// members × restarts), so that acks failing for good still fail the
/// scenario.
pub async fn reconnect(backend: &Backend) -> Outcome {
    let ctx = match Ctx::start(
        backend,
        "reconnect",
        &[Need::ConsumerGroups, Need::RestartBroker],
    ) {
        Ok(ctx) => ctx,
        Err(skipped) => return skipped,
    };
    let topic = ctx.topic();
    let options = SubscribeOptions::group(ctx.group("reconnect")).max_in_flight(MAX_IN_FLIGHT);
    let subscriber = ctx.subscriber().await;
    let mut crew = Crew::new(Tally::default());
    // Subscribed before the first publish, so the group exists.
    for member in 0..MEMBERS {
        let first = ctx.subscribe(&*subscriber, &topic, options.clone()).await;
        crew.spawn(keep_consuming(
            Arc::clone(&subscriber),
            topic.clone(),
            options.clone(),
            first,
            member,
            crew.record(),
        ));
    }
    let publisher = ctx.publisher().await;
    // At whole batches: a third of the way (rounded down) and half.
    let restarts = [COUNT / 3 / BATCH * BATCH, COUNT / 2];
    let messages: Vec<Message> = (0..COUNT)
        .map(|n| numbered(ctx.scenario, n, None, None))
        .collect();
    for (i, chunk) in messages.chunks(BATCH).enumerate() {
        if restarts.contains(&(i * BATCH)) {
            restart(&ctx, i * BATCH).await;
        }
        let give_up = Instant::now() + ctx.patience();
        loop {
            match publisher.publish(&topic, chunk.to_vec()).await {
                Ok(()) => break,
                Err(e) if Instant::now() < give_up => {
                    println!(
                        "[{}] reconnect: a publish failed, trying again: {e}",
                        backend.name()
                    );
                    tokio::time::sleep(RETRY).await;
                }
                Err(e) => ctx.fail(format!(
                    "publishing messages {}..{} still failed {:?} after the restart: {e}",
                    i * BATCH,
                    (i + 1) * BATCH,
                    ctx.patience()
                )),
            }
        }
    }
    crew.until(
        &ctx,
        &format!("all {COUNT} messages acknowledged across two broker restarts"),
        |tally| tally.all_settled(COUNT),
        |tally| tally.describe(COUNT),
    )
    .await;
    let failed_acks = crew.read(|tally| tally.unconfirmed.len());
    let bound = MAX_IN_FLIGHT * MEMBERS * restarts.len();
    if failed_acks > bound {
        ctx.fail(format!(
            "{failed_acks} acks failed, more than the {bound} deliveries the members can hold \
             when the broker goes away; {}",
            crew.read(|tally| tally.describe(COUNT))
        ));
    }
    Outcome::Passed
}

/// Runs the restart hook, failing the scenario on an error.
async fn restart(ctx: &Ctx<'_>, published: usize) {
    let what = format!("restarting the broker after {published} messages");
    match ctx.bounded(&what, ctx.backend.run_restart_broker()).await {
        Some(Ok(())) => {}
        Some(Err(e)) => ctx.fail(format!("{what}: {e}")),
        None => ctx.fail("no restart hook, although the scenario was not skipped"),
    }
}

/// One member: acknowledges every delivery, and subscribes again when its
/// subscription fails or ends (the broker went away).
async fn keep_consuming(
    subscriber: Arc<dyn Subscriber>,
    topic: String,
    options: SubscribeOptions,
    first: plexus_core::bus::Subscription,
    member: usize,
    record: Arc<tokio::sync::watch::Sender<Tally>>,
) -> Result<(), String> {
    let mut subscription = Some(first);
    loop {
        let Some(current) = subscription.as_mut() else {
            tokio::time::sleep(RETRY).await;
            subscription = subscriber.subscribe(&topic, options.clone()).await.ok();
            continue;
        };
        match current.next().await {
            Some(Ok(delivery)) => {
                let Some(n) = number_of(delivery.message()) else {
                    return Err(format!(
                        "member {member}: received message `{}` that this scenario did not publish",
                        delivery.message().id()
                    ));
                };
                record.send_modify(|t| t.deliver(n));
                // A failed ack (the broker away): redelivered, or taken
                // by a broker that does not confirm acks.
                match delivery.ack().await {
                    Ok(()) => record.send_modify(|t| t.ack(n)),
                    Err(_) => record.send_modify(|t| t.ack_failed(n)),
                }
            }
            Some(Err(_)) | None => subscription = None,
        }
    }
}
