//! `bad_input`: wrong topics, options and sizes get the right error, and
//! nothing already accepted is lost.

use std::collections::BTreeSet;
use std::time::Duration;

use plexus_core::Message;
use plexus_core::bus::{BusError, SubscribeOptions};

use crate::support::{Ctx, numbered};
use crate::{Backend, Outcome};

/// The key of every message here, so that a backend with per-key order
/// delivers them in publish order.
const KEY: &str = "bad-input";
/// The number of the small message published in a batch with an
/// oversized one.
const REFUSED: usize = 900;

/// Topic names every backend refuses with [`BusError::InvalidTopic`], on
/// publish and on subscribe: empty, with whitespace or a control
/// character, longer than 255 bytes. Options refused with
/// [`BusError::InvalidOption`]: `max_in_flight` 0, `ack_deadline` 0, an
/// empty group name; asking for a group or the earliest message of a
/// backend without them: [`BusError::Unsupported`]. A message over
/// [`Features::max_message_bytes`](plexus_core::bus::Features::max_message_bytes):
/// [`BusError::TooLarge`], and none of its batch is accepted. An empty
/// batch is accepted. Messages published before and after all that
/// arrive, and nothing else does.
pub async fn bad_input(backend: &Backend) -> Outcome {
    let ctx = match Ctx::start(backend, "bad_input", &[]) {
        Ok(ctx) => ctx,
        Err(skipped) => return skipped,
    };
    let topic = ctx.topic();
    let features = backend.features().clone();
    let subscriber = ctx.subscriber().await;
    let mut subscription = ctx
        .subscribe(&*subscriber, &topic, SubscribeOptions::default())
        .await;
    let publisher = ctx.publisher().await;
    let good = |range: std::ops::Range<usize>| -> Vec<Message> {
        range
            .map(|n| numbered(ctx.scenario, n, Some(KEY), None))
            .collect()
    };
    ctx.publish(&*publisher, &topic, good(0..10)).await;

    for bad in [
        "",
        "with space",
        "tab\there",
        "nul\0byte",
        "new\nline",
        &"t".repeat(256),
    ] {
        let shown = format!("{:?}", &bad[..bad.len().min(20)]);
        let published = ctx
            .bounded(
                "publishing to an invalid topic",
                publisher.publish(bad, good(REFUSED..REFUSED + 1)),
            )
            .await;
        ctx.expect_error(
            &format!("publishing to topic {shown}"),
            published,
            "BusError::InvalidTopic",
            |e| matches!(e, BusError::InvalidTopic { .. }),
        );
        let subscribed = ctx
            .bounded(
                "subscribing to an invalid topic",
                subscriber.subscribe(bad, SubscribeOptions::default()),
            )
            .await;
        ctx.expect_error(
            &format!("subscribing to topic {shown}"),
            subscribed,
            "BusError::InvalidTopic",
            |e| matches!(e, BusError::InvalidTopic { .. }),
        );
    }

    let mut refused_options = vec![
        (
            SubscribeOptions::default().max_in_flight(0),
            "max_in_flight 0",
            "BusError::InvalidOption for max_in_flight",
            Some("max_in_flight"),
        ),
        (
            SubscribeOptions::default().ack_deadline(Duration::ZERO),
            "ack_deadline 0",
            "BusError::InvalidOption for ack_deadline",
            Some("ack_deadline"),
        ),
    ];
    if features.consumer_groups {
        refused_options.push((
            SubscribeOptions::group(""),
            "an empty group name",
            "BusError::InvalidOption for group",
            Some("group"),
        ));
    } else {
        refused_options.push((
            SubscribeOptions::group(ctx.group("unsupported")),
            "a group, on a backend without consumer groups",
            "BusError::Unsupported",
            None,
        ));
    }
    if !features.replay {
        refused_options.push((
            SubscribeOptions::default().from_earliest(),
            "the earliest message, on a backend without replay",
            "BusError::Unsupported",
            None,
        ));
    }
    for (options, what, expected, option_name) in refused_options {
        let subscribed = ctx
            .bounded(
                format!("subscribing with {what}"),
                subscriber.subscribe(&topic, options),
            )
            .await;
        ctx.expect_error(
            &format!("subscribing with {what}"),
            subscribed,
            expected,
            |e| match (e, option_name) {
                (BusError::InvalidOption { option, .. }, Some(name)) => *option == name,
                (BusError::Unsupported { .. }, None) => true,
                _ => false,
            },
        );
    }

    let limit = features.max_message_bytes;
    let oversized = Message::builder("dev.plexus.conformance.Oversized", "/conformance/bad_input")
        .key(KEY)
        .payload("application/octet-stream", vec![0x5a; limit + 1])
        .build()
        .expect("an oversized payload is still a valid message");
    let oversized_id = oversized.id().to_owned();
    let mut batch = good(REFUSED..REFUSED + 1);
    batch.push(oversized);
    let published = ctx
        .bounded(
            "publishing an oversized message",
            publisher.publish(&topic, batch),
        )
        .await;
    let error = ctx.expect_error(
        &format!("publishing a batch with a message over the {limit}-byte limit"),
        published,
        "BusError::TooLarge",
        |e| matches!(e, BusError::TooLarge { .. }),
    );
    if let BusError::TooLarge {
        id,
        size,
        limit: said,
        topic: named,
        ..
    } = &error
    {
        ctx.check(*id == oversized_id && *said == limit && *size > limit && *named == topic, || {
            format!(
                "the TooLarge error should name message `{oversized_id}`, topic `{topic}`, a size over the limit and the limit {limit}; it says: {error}"
            )
        });
    }
    let empty = ctx
        .bounded(
            "publishing an empty batch",
            publisher.publish(&topic, Vec::new()),
        )
        .await;
    if let Err(e) = empty {
        ctx.fail(format!(
            "publishing an empty batch: expected Ok (a no-op), got {e}"
        ));
    }

    ctx.publish(&*publisher, &topic, good(10..20)).await;
    let mut missing: BTreeSet<usize> = (0..20).collect();
    while !missing.is_empty() {
        let waiting = format!(
            "{} of the 20 accepted messages (first missing: {:?})",
            missing.len(),
            missing.first()
        );
        let delivery = ctx.next(&mut subscription, waiting).await;
        let n = ctx.number(&delivery, REFUSED + 1);
        ctx.check(n != REFUSED, || {
            "a message of a batch refused as TooLarge was delivered: a refused batch must be refused whole".to_owned()
        });
        missing.remove(&n);
        ctx.ack(delivery).await;
    }
    Outcome::Passed
}
