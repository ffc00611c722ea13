//! `deadline_propagates`: message deadlines through the Router on the
//! backend.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use plexus_bus::router::{
    DeadLetterLayer, DeadlineLayer, Incoming, Outgoing, Router, dead_letter_headers, handler_fn,
    message_deadline,
};
use plexus_core::Message;
use plexus_core::bus::SubscribeOptions;
use plexus_core::deadline::TIMEOUT_HEADER;
use tower::{BoxError, ServiceBuilder};

use crate::outcome::Need;
use crate::support::{Ctx, Routed, number_of, numbered};
use crate::{Backend, Outcome};

/// What a handler's output may lose of its input's deadline: the budget
/// is whole milliseconds and a backend may store `time` to the
/// millisecond.
const ROUNDING: Duration = Duration::from_millis(5);

/// Two messages with deadlines through a Router with the deadline and
/// dead-letter layers: one published 5 s ago with a 65 s budget, one
/// published 60 s ago with a 1 s budget. The live one reaches the
/// handler, and the message the handler publishes carries what is left
/// of its deadline (not a fresh budget, not none); the expired one never
/// reaches the handler and goes to the dead-letter topic as `expired`.
pub async fn deadline_propagates(backend: &Backend) -> Outcome {
    let ctx = match Ctx::start(backend, "deadline_propagates", &[Need::ConsumerGroups]) {
        Ok(ctx) => ctx,
        Err(skipped) => return skipped,
    };
    let topic = ctx.topic();
    let (out_topic, dead_topic) = (format!("{topic}_out"), format!("{topic}_dead"));
    let subscriber = ctx.subscriber().await;
    let mut out = ctx
        .subscribe(&*subscriber, &out_topic, SubscribeOptions::default())
        .await;
    let mut dead = ctx
        .subscribe(&*subscriber, &dead_topic, SubscribeOptions::default())
        .await;
    let handled = Arc::new(Mutex::new(Vec::new()));
    let handler = {
        let handled = Arc::clone(&handled);
        let (scenario, out_topic) = (ctx.scenario, out_topic.clone());
        handler_fn(move |incoming: Incoming| {
            let (handled, out_topic) = (Arc::clone(&handled), out_topic.clone());
            async move {
                let n = number_of(&incoming.message).unwrap_or(usize::MAX);
                handled.lock().unwrap_or_else(|e| e.into_inner()).push(n);
                // A follow-up with no deadline of its own, made now.
                let follow_up = numbered(scenario, n + 100, None, None);
                Ok::<_, BoxError>(vec![Outgoing::new(out_topic, follow_up)])
            }
        })
    };
    let publisher = ctx.publisher().await;
    let handler = ServiceBuilder::new()
        .layer(DeadLetterLayer::new(Arc::clone(&publisher), &dead_topic, 5))
        .layer(DeadlineLayer)
        .service(handler);
    let router = Router::new(Arc::clone(&subscriber), Arc::clone(&publisher)).route(
        "deadline",
        &topic,
        SubscribeOptions::group(ctx.group("deadline")),
        handler,
    );
    let routed = Routed::start(&ctx, router).await;

    let now = SystemTime::now();
    let live = with_deadline(&ctx, 0, now - Duration::from_secs(5), 65_000);
    let expired = with_deadline(&ctx, 1, now - Duration::from_secs(60), 1_000);
    let live_deadline = message_deadline(&live).unwrap_or_else(|| ctx.fail("no deadline"));
    ctx.publish(&*publisher, &topic, vec![expired.clone(), live])
        .await;

    let follow_up = ctx
        .next(&mut out, "the handler's follow-up of the live message")
        .await;
    let follow = follow_up.message().clone();
    ctx.ack(follow_up).await;
    let letter = ctx
        .next(&mut dead, "the expired message in the dead-letter topic")
        .await;
    let letter_message = letter.message().clone();
    ctx.ack(letter).await;
    routed.stop(&ctx).await;

    ctx.check(number_of(&follow) == Some(100), || {
        format!("the follow-up is {follow:?}, expected the one made for message 0")
    });
    let Some(carried) = message_deadline(&follow) else {
        ctx.fail(format!(
            "the follow-up carries no deadline ({TIMEOUT_HEADER} is {:?}); expected what was left of its input's",
            follow.header(TIMEOUT_HEADER)
        ))
    };
    let shortfall = live_deadline
        .duration_since(carried)
        .unwrap_or(Duration::ZERO);
    let excess = carried
        .duration_since(live_deadline)
        .unwrap_or(Duration::ZERO);
    ctx.check(excess <= ROUNDING && shortfall <= ROUNDING, || {
        format!(
            "the follow-up's deadline is {excess:?} after and {shortfall:?} before its input's (budget {:?} from its time): expected the remaining budget",
            follow.header(TIMEOUT_HEADER)
        )
    });
    ctx.check(letter_message.id() == expired.id(), || {
        format!(
            "the dead letter is `{}`, expected the expired message `{}`",
            letter_message.id(),
            expired.id()
        )
    });
    ctx.check(
        letter_message.header(dead_letter_headers::REASON) == Some("expired"),
        || {
            format!(
                "the expired message was dead-lettered with reason {:?}, expected \"expired\"",
                letter_message.header(dead_letter_headers::REASON)
            )
        },
    );
    let handled = handled.lock().unwrap_or_else(|e| e.into_inner()).clone();
    ctx.check(handled == [0], || {
        format!("the handler was called for messages {handled:?}, expected only the live one (0)")
    });
    Outcome::Passed
}

/// Message `n` stamped `time`, with a budget of `ms` from then.
fn with_deadline(ctx: &Ctx<'_>, n: usize, time: SystemTime, ms: u64) -> Message {
    let mut parts = numbered(ctx.scenario, n, None, None).into_parts();
    parts.time = time;
    parts
        .headers
        .insert(TIMEOUT_HEADER.to_owned(), ms.to_string());
    Message::from_parts(parts).unwrap_or_else(|e| ctx.fail(format!("building message {n}: {e}")))
}
