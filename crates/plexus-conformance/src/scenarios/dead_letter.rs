//! `poison_to_dead_letter`: the Router's dead-letter layer on the backend.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use plexus_bus::router::{
    DeadLetterLayer, Incoming, Outgoing, Router, dead_letter_headers, handler_fn,
};
use plexus_core::Message;
use plexus_core::bus::SubscribeOptions;
use tokio::sync::watch;
use tower::{BoxError, ServiceBuilder};

use crate::outcome::Need;
use crate::support::{Ctx, Routed, number_of, numbered};
use crate::{Backend, Outcome};

/// Good messages published behind the poison one.
const GOOD: usize = 40;
const MAX_ATTEMPTS: u32 = 3;
/// The header marking the poison message.
const POISON: &str = "conformance-poison";
const FAILURE: &str = "conformance: this message can never be handled";

/// What the handler saw.
#[derive(Default)]
struct Calls {
    poison: u32,
    /// Good message numbers and how often each was handled.
    good: BTreeMap<usize, u32>,
}

/// A message that always fails, then 40 good ones (some of them of the
/// poison message's key): after 3 deliveries the poison message lands in
/// the dead-letter topic, unchanged but for headers naming the error,
/// the attempt and the source topic; every good message is handled once,
/// those of its key too.
pub async fn poison_to_dead_letter(backend: &Backend) -> Outcome {
    let ctx = match Ctx::start(backend, "poison_to_dead_letter", &[Need::ConsumerGroups]) {
        Ok(ctx) => ctx,
        Err(skipped) => return skipped,
    };
    let topic = ctx.topic();
    let dead_topic = format!("{topic}_dead");
    let subscriber = ctx.subscriber().await;
    let mut dead = ctx
        .subscribe(&*subscriber, &dead_topic, SubscribeOptions::default())
        .await;
    let (calls, mut calls_rx) = watch::channel(Calls::default());
    let calls = Arc::new(calls);
    let handler = {
        let calls = Arc::clone(&calls);
        handler_fn(move |incoming: Incoming| {
            let calls = Arc::clone(&calls);
            async move {
                if incoming.message.header(POISON).is_some() {
                    calls.send_modify(|c| c.poison += 1);
                    return Err::<Vec<Outgoing>, BoxError>(FAILURE.into());
                }
                let n = number_of(&incoming.message).unwrap_or(usize::MAX);
                calls.send_modify(|c| *c.good.entry(n).or_default() += 1);
                Ok(Vec::new())
            }
        })
    };
    let publisher = ctx.publisher().await;
    let handler = ServiceBuilder::new()
        .layer(DeadLetterLayer::new(
            Arc::clone(&publisher),
            &dead_topic,
            MAX_ATTEMPTS,
        ))
        .service(handler);
    let router = Router::new(Arc::clone(&subscriber), Arc::clone(&publisher))
        .nack_delay(Duration::from_millis(10))
        .route(
            "poison",
            &topic,
            SubscribeOptions::group(ctx.group("poison")).max_in_flight(16),
            handler,
        );
    let routed = Routed::start(&ctx, router).await;

    let poison = poison_message(&ctx);
    let mut batch = vec![poison.clone()];
    batch.extend((1..=GOOD).map(|n| {
        let key = if n % 4 == 0 {
            "poisoned".to_owned()
        } else {
            format!("good-{}", n % 3)
        };
        numbered(ctx.scenario, n, Some(&key), None)
    }));
    ctx.publish(&*publisher, &topic, batch).await;

    let waited = ctx
        .bounded(
            format!("all {GOOD} good messages handled while the poison one fails"),
            calls_rx.wait_for(|c| c.good.len() >= GOOD),
        )
        .await
        .is_ok();
    ctx.check(waited, || "the handler's record was dropped".to_owned());
    let letter = ctx
        .next(&mut dead, "the poison message in the dead-letter topic")
        .await;
    let got = letter.message().clone();
    ctx.ack(letter).await;
    routed.stop(&ctx).await;

    ctx.check(got.id() == poison.id(), || {
        format!(
            "the dead letter is message `{}`, expected the poison message `{}`",
            got.id(),
            poison.id()
        )
    });
    let kept = got.ty() == poison.ty()
        && got.source() == poison.source()
        && got.key() == poison.key()
        && got.payload() == poison.payload()
        && got.data_content_type() == poison.data_content_type()
        && poison
            .headers()
            .iter()
            .all(|(k, v)| got.header(k) == Some(v));
    ctx.check(kept, || {
        format!("the dead letter does not keep the original message: sent {poison:?}, got {got:?}")
    });
    let expected_headers = [
        (dead_letter_headers::ATTEMPT, MAX_ATTEMPTS.to_string()),
        (dead_letter_headers::TOPIC, topic.clone()),
        (dead_letter_headers::REASON, "max-attempts".to_owned()),
        (dead_letter_headers::ERROR, FAILURE.to_owned()),
    ];
    for (name, value) in expected_headers {
        ctx.check(got.header(name) == Some(value.as_str()), || {
            format!(
                "dead-letter header `{name}` is {:?}, expected {value:?}",
                got.header(name)
            )
        });
    }
    let calls = calls_rx.borrow();
    ctx.check(calls.poison == MAX_ATTEMPTS, || {
        format!(
            "the poison message was handled {} times, expected {MAX_ATTEMPTS} (then dead-lettered)",
            calls.poison
        )
    });
    let twice: Vec<_> = calls.good.iter().filter(|(_, c)| **c != 1).collect();
    ctx.check(
        twice.is_empty() && calls.good.keys().all(|n| (1..=GOOD).contains(n)),
        || format!("good messages handled other than once each (number, calls): {twice:?}"),
    );
    Outcome::Passed
}

fn poison_message(ctx: &Ctx<'_>) -> Message {
    let numbered = numbered(ctx.scenario, 0, Some("poisoned"), None);
    let mut parts = numbered.into_parts();
    parts.headers.insert(POISON.to_owned(), "yes".to_owned());
    parts.subject = Some("a message no handler can take".to_owned());
    Message::from_parts(parts)
        .unwrap_or_else(|e| ctx.fail(format!("building the poison message: {e}")))
}
