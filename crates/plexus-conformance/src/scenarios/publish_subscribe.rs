//! `publish_subscribe`: messages arrive whole.

use std::collections::HashMap;
use std::time::{Duration, UNIX_EPOCH};

use plexus_core::Message;
use plexus_core::bus::SubscribeOptions;

use crate::support::Ctx;
use crate::{Backend, Outcome};

const COUNT: usize = 100;

/// 100 messages published in batches of 10 reach a subscriber with their
/// id, type, source, subject, time, content type, key, headers and
/// payload intact, as the first attempt, from the right topic; the
/// backend's handles report the declared [`Features`](plexus_core::bus::Features).
pub async fn publish_subscribe(backend: &Backend) -> Outcome {
    let ctx = match Ctx::start(backend, "publish_subscribe", &[]) {
        Ok(ctx) => ctx,
        Err(skipped) => return skipped,
    };
    let topic = ctx.topic();
    let publisher = ctx.publisher().await;
    let subscriber = ctx.subscriber().await;
    ctx.check(publisher.features() == *backend.features(), || {
        format!(
            "the publisher reports {:?}, the backend was declared with {:?}",
            publisher.features(),
            backend.features()
        )
    });
    ctx.check(subscriber.features() == *backend.features(), || {
        format!(
            "the subscriber reports {:?}, the backend was declared with {:?}",
            subscriber.features(),
            backend.features()
        )
    });
    let mut subscription = ctx
        .subscribe(&*subscriber, &topic, SubscribeOptions::default())
        .await;
    let sent: Vec<Message> = (0..COUNT).map(sample).collect();
    ctx.publish_all(&*publisher, &topic, &sent, 10).await;

    let mut expected: HashMap<&str, &Message> = sent.iter().map(|m| (m.id(), m)).collect();
    while !expected.is_empty() {
        let waiting = format!("{} of {COUNT} messages on `{topic}`", expected.len());
        let delivery = ctx.next(&mut subscription, waiting).await;
        let got = delivery.message().clone();
        ctx.check(delivery.topic() == topic, || {
            format!(
                "message `{}` says it came from topic `{}`, it was published to `{topic}`",
                got.id(),
                delivery.topic()
            )
        });
        let Some(want) = expected.remove(got.id()) else {
            ctx.fail(format!(
                "received message `{}` which is not one of the {COUNT} published or arrived twice (at-least-once allows a duplicate only after a nack or expired deadline, and there was none): {got:?}",
                got.id()
            ))
        };
        compare(&ctx, want, &got);
        ctx.check(delivery.attempt() == 1, || {
            format!(
                "message `{}` arrived as attempt {}, expected 1 (it was never nacked)",
                got.id(),
                delivery.attempt()
            )
        });
        ctx.ack(delivery).await;
    }
    Outcome::Passed
}

/// Message `i`: every attribute set (or left out, for some), headers with
/// non-ASCII values, a binary payload (empty for some).
fn sample(i: usize) -> Message {
    let micros = 1_767_225_600_000_000u64 + (i as u64) * 1_000_001;
    let mut builder = Message::builder(
        format!("dev.plexus.conformance.Sample{}", i % 3),
        format!("/conformance/publish_subscribe/{}", i % 4),
    )
    .time(UNIX_EPOCH + Duration::from_micros(micros))
    .header("index", i.to_string())
    .header("note", "grüße, 世界 ✓ \"quoted\" = and ; tab\there")
    .header("x-empty", "");
    if !i.is_multiple_of(5) {
        builder = builder.key(format!("key-{}", i % 7));
    }
    if !i.is_multiple_of(3) {
        builder = builder.subject(format!("subject/{i}"));
    }
    if !i.is_multiple_of(10) {
        let payload: Vec<u8> = (0..(i * 13 % 300 + 1))
            .map(|b| ((b * 31 + i) % 256) as u8)
            .collect();
        builder = builder.payload("application/octet-stream", payload);
    }
    builder.build().expect("the sample messages are valid")
}

/// Fails unless `got` equals `want` in every field, naming the first that
/// differs.
fn compare(ctx: &Ctx<'_>, want: &Message, got: &Message) {
    let id = want.id();
    let field = |name: &str, w: String, g: String| {
        ctx.check(w == g, || {
            format!("message `{id}`: {name} was published as {w} but arrived as {g}")
        });
    };
    field(
        "source",
        format!("{:?}", want.source()),
        format!("{:?}", got.source()),
    );
    field(
        "type",
        format!("{:?}", want.ty()),
        format!("{:?}", got.ty()),
    );
    field(
        "subject",
        format!("{:?}", want.subject()),
        format!("{:?}", got.subject()),
    );
    field(
        "time",
        format!("{:?}", want.time()),
        format!("{:?}", got.time()),
    );
    field(
        "datacontenttype",
        format!("{:?}", want.data_content_type()),
        format!("{:?}", got.data_content_type()),
    );
    field(
        "key",
        format!("{:?}", want.key()),
        format!("{:?}", got.key()),
    );
    field(
        "headers",
        format!("{:?}", want.headers()),
        format!("{:?}", got.headers()),
    );
    field(
        "payload",
        format!("{} bytes {:?}", want.payload().len(), want.payload()),
        format!("{} bytes {:?}", got.payload().len(), got.payload()),
    );
    ctx.check(want == got, || {
        format!("message `{id}` differs: published {want:?}, received {got:?}")
    });
}
