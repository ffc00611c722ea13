//! `publisher_close`: what publishers accepted before closing is
//! delivered, and a closed publisher refuses more.

use std::sync::Arc;

use futures::future::join_all;
use plexus_core::Message;
use plexus_core::bus::{BusError, Publisher, SubscribeOptions};

use crate::support::{Crew, Ctx, Tally, ack_all, numbered};
use crate::{Backend, Outcome};

const PUBLISHERS: usize = 20;
const EACH: usize = 500;
const COUNT: usize = PUBLISHERS * EACH;

/// 10,000 messages from 20 publisher handles publishing at once (batches
/// of 50), each closed as soon as its last publish returns: all 10,000
/// are delivered, and publishing on a closed publisher fails with
/// [`BusError::Closed`]. For a [one-handle](Backend::one_handle) backend,
/// where closing the publisher closes the subscriber too, the publishers
/// close once everything is delivered.
pub async fn publisher_close(backend: &Backend) -> Outcome {
    let ctx = match Ctx::start(backend, "publisher_close", &[]) {
        Ok(ctx) => ctx,
        Err(skipped) => return skipped,
    };
    let close_early = !backend.is_one_handle();
    let topic = ctx.topic();
    let subscriber = ctx.subscriber().await;
    let subscription = ctx
        .subscribe(&*subscriber, &topic, SubscribeOptions::default())
        .await;
    let mut consumers = Crew::new(Tally::default());
    ack_all(
        &mut consumers,
        subscription,
        "the subscriber".to_owned(),
        |t| t,
    );

    let mut publishers = Vec::new();
    for _ in 0..PUBLISHERS {
        publishers.push(ctx.publisher().await);
    }
    let mut senders = Crew::new(());
    for (p, publisher) in publishers.iter().enumerate() {
        let publisher = Arc::clone(publisher);
        let topic = topic.clone();
        let messages: Vec<Message> = (p * EACH..(p + 1) * EACH)
            .map(|n| numbered("publisher_close", n, None, None))
            .collect();
        senders.spawn(async move {
            for chunk in messages.chunks(50) {
                publisher
                    .publish(&topic, chunk.to_vec())
                    .await
                    .map_err(|e| format!("publisher {p}: publishing to `{topic}`: {e}"))?;
            }
            if close_early {
                publisher
                    .close()
                    .await
                    .map_err(|e| format!("publisher {p}: closing: {e}"))?;
                refuses_after_close(&*publisher, &topic)
                    .await
                    .map_err(|e| format!("publisher {p}: {e}"))?;
            }
            Ok(())
        });
    }
    senders
        .join(
            &ctx,
            &format!("{PUBLISHERS} publishers publishing {EACH} each"),
        )
        .await;
    consumers
        .until(
            &ctx,
            &format!("all {COUNT} messages from {PUBLISHERS} closed publishers acknowledged"),
            |t| t.all_acked(COUNT),
            |t| t.describe(COUNT),
        )
        .await;
    if !close_early {
        let closes = join_all(publishers.iter().map(|p| p.close()));
        for result in ctx.bounded("closing 20 publishers at once", closes).await {
            if let Err(e) = result {
                ctx.fail(format!("closing a publisher: {e}"));
            }
        }
        for publisher in &publishers {
            if let Err(e) = refuses_after_close(&**publisher, &topic).await {
                ctx.fail(e);
            }
        }
    }
    Outcome::Passed
}

/// `Err` unless publishing on the closed `publisher` fails with
/// [`BusError::Closed`].
async fn refuses_after_close(publisher: &dyn Publisher, topic: &str) -> Result<(), String> {
    let late = numbered("publisher_close", COUNT, None, None);
    match publisher.publish(topic, vec![late]).await {
        Err(BusError::Closed { .. }) => Ok(()),
        Err(e) => Err(format!(
            "publishing after close: expected BusError::Closed, got {e:?} ({e})"
        )),
        Ok(()) => Err("publishing after close: expected BusError::Closed, got Ok".to_owned()),
    }
}
