//! Consumer groups: `concurrent_subscribe` (members of one group share
//! the messages) and `consumer_groups` (each group gets them all).

use std::time::Duration;

use plexus_core::Message;
use plexus_core::bus::SubscribeOptions;

use crate::outcome::Need;
use crate::support::{Crew, Ctx, Tally, ack_all, numbered};
use crate::{Backend, Outcome};

/// How long a group is watched, once every message was acknowledged,
/// for a copy that another member was handed late: a broker that ignored
/// the group may hand the other members theirs after the first member
/// finished.
const LATE_COPIES: Duration = Duration::from_millis(300);

/// 5,000 messages published while 50 members of one group (on 5
/// subscriber handles) consume them: every message is delivered to
/// exactly one member and acknowledged once, none is lost.
pub async fn concurrent_subscribe(backend: &Backend) -> Outcome {
    const COUNT: usize = 5_000;
    const MEMBERS: usize = 50;
    const HANDLES: usize = 5;
    let ctx = match Ctx::start(backend, "concurrent_subscribe", &[Need::ConsumerGroups]) {
        Ok(ctx) => ctx,
        Err(skipped) => return skipped,
    };
    let topic = ctx.topic();
    let group = ctx.group("workers");
    let mut handles = Vec::new();
    for _ in 0..HANDLES {
        handles.push(ctx.subscriber().await);
    }
    let mut crew = Crew::new(Tally::default());
    for member in 0..MEMBERS {
        let subscription = ctx
            .subscribe(
                &*handles[member % HANDLES],
                &topic,
                SubscribeOptions::group(&group),
            )
            .await;
        ack_all(
            &mut crew,
            subscription,
            format!("member {member} of `{group}`"),
            |t| t,
        );
    }
    let publisher = ctx.publisher().await;
    let messages: Vec<Message> = (0..COUNT)
        .map(|n| numbered(ctx.scenario, n, None, None))
        .collect();
    ctx.publish_all(&*publisher, &topic, &messages, 100).await;
    crew.until(
        &ctx,
        &format!("all {COUNT} messages acknowledged by the {MEMBERS} members of `{group}`"),
        |t| t.all_acked(COUNT),
        |t| t.describe(COUNT),
    )
    .await;
    crew.stays_clear(
        &ctx,
        LATE_COPIES,
        &format!("after all {COUNT} were acknowledged, a message reached `{group}` again, expected once each"),
        |t| t.repeats > 0,
        |t| t.describe(COUNT),
    )
    .await;
    let tally = crew.read(Tally::clone);
    if let Err(problem) = tally.exactly_once(COUNT) {
        ctx.fail(format!(
            "in group `{group}` of {MEMBERS} members: {problem}"
        ));
    }
    Outcome::Passed
}

/// Two groups of 3 members each: every message of 300 reaches each group,
/// once within the group.
pub async fn consumer_groups(backend: &Backend) -> Outcome {
    const COUNT: usize = 300;
    const MEMBERS: usize = 3;
    let ctx = match Ctx::start(backend, "consumer_groups", &[Need::ConsumerGroups]) {
        Ok(ctx) => ctx,
        Err(skipped) => return skipped,
    };
    let topic = ctx.topic();
    let groups = [ctx.group("billing"), ctx.group("shipping")];
    let mut crew = Crew::new([Tally::default(), Tally::default()]);
    // Kept open while their subscriptions are read.
    let mut handles = Vec::new();
    for member in 0..MEMBERS {
        let subscriber = ctx.subscriber().await;
        handles.push(std::sync::Arc::clone(&subscriber));
        let first = ctx
            .subscribe(&*subscriber, &topic, SubscribeOptions::group(&groups[0]))
            .await;
        ack_all(
            &mut crew,
            first,
            format!("member {member} of `{}`", groups[0]),
            |r| &mut r[0],
        );
        let second = ctx
            .subscribe(&*subscriber, &topic, SubscribeOptions::group(&groups[1]))
            .await;
        ack_all(
            &mut crew,
            second,
            format!("member {member} of `{}`", groups[1]),
            |r| &mut r[1],
        );
    }
    let publisher = ctx.publisher().await;
    let messages: Vec<Message> = (0..COUNT)
        .map(|n| numbered(ctx.scenario, n, None, None))
        .collect();
    ctx.publish_all(&*publisher, &topic, &messages, 25).await;
    let describe = |r: &[Tally; 2]| {
        format!(
            "`{}`: {}; `{}`: {}",
            groups[0],
            r[0].describe(COUNT),
            groups[1],
            r[1].describe(COUNT)
        )
    };
    crew.until(
        &ctx,
        &format!("all {COUNT} messages acknowledged in both groups"),
        |r| r[0].all_acked(COUNT) && r[1].all_acked(COUNT),
        describe,
    )
    .await;
    crew.stays_clear(
        &ctx,
        LATE_COPIES,
        "after all were acknowledged in both groups, a message reached a group again, expected once each",
        |r| r[0].repeats > 0 || r[1].repeats > 0,
        describe,
    )
    .await;
    let tallies = crew.read(Clone::clone);
    for (group, tally) in groups.iter().zip(&tallies) {
        if let Err(problem) = tally.exactly_once(COUNT) {
            ctx.fail(format!("in group `{group}`: {problem}"));
        }
    }
    Outcome::Passed
}
