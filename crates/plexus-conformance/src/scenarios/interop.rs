//! `cloudevents_interop`: plexus and a client of the broker in another
//! language read each other's messages.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use plexus_core::Message;
use plexus_core::bus::SubscribeOptions;

use crate::outcome::Need;
use crate::support::{Ctx, number_of};
use crate::{Backend, Outcome};

const COUNT: usize = 3;

/// For backends with a foreign client: three messages carrying every
/// CloudEvents attribute, a key, headers and a binary payload go from the
/// foreign client to a plexus subscription, and three from plexus to the
/// foreign client; each side reads every attribute, the key, the headers
/// and the payload as they were sent (the time to the millisecond).
pub async fn cloudevents_interop(backend: &Backend) -> Outcome {
    let ctx = match Ctx::start(backend, "cloudevents_interop", &[Need::ForeignClient]) {
        Ok(ctx) => ctx,
        Err(skipped) => return skipped,
    };
    let Some(foreign) = backend.foreign() else {
        ctx.fail("no foreign client, although the scenario was not skipped")
    };
    let who = foreign.name();

    // Foreign client → plexus.
    let topic = ctx.topic();
    let subscriber = ctx.subscriber().await;
    let mut subscription = ctx
        .subscribe(&*subscriber, &topic, SubscribeOptions::default())
        .await;
    let sent: Vec<Message> = (0..COUNT).map(|n| full(&ctx, n, "foreign")).collect();
    let what = format!("{who} publishing {COUNT} messages");
    if let Err(e) = ctx
        .bounded(&what, foreign.publish(&topic, sent.clone()))
        .await
    {
        ctx.fail(format!("{what}: {e}"));
    }
    for _ in 0..COUNT {
        let delivery = ctx
            .next(&mut subscription, format!("the messages {who} published"))
            .await;
        let got = delivery.message().clone();
        ctx.ack(delivery).await;
        same(
            &ctx,
            &sent,
            &got,
            &format!("published by {who}, read by plexus"),
        );
    }

    // plexus → foreign client.
    let topic = ctx.topic();
    let what = format!("{who} subscribing");
    let reading = match ctx.bounded(&what, foreign.read(&topic, COUNT)).await {
        Ok(reading) => reading,
        Err(e) => ctx.fail(format!("{what}: {e}")),
    };
    let sent: Vec<Message> = (0..COUNT).map(|n| full(&ctx, n, "plexus")).collect();
    let publisher = ctx.publisher().await;
    ctx.publish(&*publisher, &topic, sent.clone()).await;
    let what = format!("{who} reading the {COUNT} messages plexus published");
    let read = match ctx.bounded(&what, reading).await {
        Ok(read) => read,
        Err(e) => ctx.fail(format!("{what}: {e}")),
    };
    ctx.check(read.len() == COUNT, || {
        format!("{what}: it returned {} messages", read.len())
    });
    for got in &read {
        same(
            &ctx,
            &sent,
            got,
            &format!("published by plexus, read by {who}"),
        );
    }
    Outcome::Passed
}

/// Message `n` with every attribute set: a subject, a time in whole
/// milliseconds, a content type, a key, headers and a payload that is not
/// UTF-8.
fn full(ctx: &Ctx<'_>, n: usize, from: &str) -> Message {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let time = UNIX_EPOCH + Duration::from_millis(millis - 1000 * n as u64);
    let payload: Vec<u8> = [0xff, 0x00, 0xfe]
        .iter()
        .copied()
        .chain(n.to_le_bytes())
        .collect();
    Message::builder(
        "dev.plexus.conformance.Interop",
        format!("/conformance/interop/{from}"),
    )
    .subject(format!("item-{n}"))
    .time(time)
    .key(format!("key-{n}"))
    .header("conformance-n", n.to_string())
    .header("conformance-from", from)
    .payload("application/octet-stream", payload)
    .build()
    .unwrap_or_else(|e| ctx.fail(format!("building interop message {n}: {e}")))
}

/// Fails unless `got` is one of `sent`, attribute for attribute (headers
/// the broker added are allowed).
fn same(ctx: &Ctx<'_>, sent: &[Message], got: &Message, route: &str) {
    let Some(expected) = number_of(got).and_then(|n| sent.get(n)) else {
        ctx.fail(format!("{route}: received {got:?}, which was not sent"))
    };
    let differences: Vec<&str> = [
        ("id", got.id() == expected.id()),
        ("source", got.source() == expected.source()),
        ("type", got.ty() == expected.ty()),
        ("subject", got.subject() == expected.subject()),
        ("time", got.time() == expected.time()),
        (
            "datacontenttype",
            got.data_content_type() == expected.data_content_type(),
        ),
        ("key", got.key() == expected.key()),
        (
            "headers",
            expected
                .headers()
                .iter()
                .all(|(k, v)| got.header(k) == Some(v)),
        ),
        ("payload", got.payload() == expected.payload()),
    ]
    .into_iter()
    .filter(|(_, equal)| !equal)
    .map(|(name, _)| name)
    .collect();
    ctx.check(differences.is_empty(), || {
        format!("{route}: {differences:?} differ: sent {expected:?}, received {got:?}")
    });
}
