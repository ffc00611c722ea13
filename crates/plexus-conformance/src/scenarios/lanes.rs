//! `parallel_across_keys`: the Router with per-key lanes on the backend.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use plexus_bus::router::{Incoming, KeyLanesLayer, Outgoing, Router, handler_fn};
use plexus_core::bus::SubscribeOptions;
use tokio::sync::watch;
use tower::{BoxError, ServiceBuilder};

use crate::outcome::Need;
use crate::support::{Ctx, Routed, numbered, seq_of};
use crate::{Backend, Outcome};

const KEYS: usize = 8;
const PER_KEY: usize = 25;
/// The key whose first message waits for another key's message to finish.
const HELD: &str = "key-0";

/// What the handler saw.
#[derive(Default)]
struct Seen {
    /// Keys with a call in progress.
    in_progress: BTreeSet<String>,
    /// The place the next call of each key must have.
    next: HashMap<String, usize>,
    /// The most keys in progress at once.
    most_at_once: usize,
    problems: Vec<String>,
}

/// 200 messages over 8 keys through a Router whose handler sits behind
/// [`KeyLanesLayer`]: each key's messages are handled one at a time in
/// publish order, and different keys are handled at the same time (the
/// first message of one key is held until a message of another key has
/// been handled meanwhile, which only parallel keys allow).
pub async fn parallel_across_keys(backend: &Backend) -> Outcome {
    let ctx = match Ctx::start(
        backend,
        "parallel_across_keys",
        &[Need::ConsumerGroups, Need::PerKeyOrder],
    ) {
        Ok(ctx) => ctx,
        Err(skipped) => return skipped,
    };
    let topic = ctx.topic();
    let seen = Arc::new(Mutex::new(Seen::default()));
    // Calls finished: all of them, and those of keys other than HELD.
    let (finished, mut finished_rx) = watch::channel((0usize, 0usize));
    let finished = Arc::new(finished);
    let patience = ctx.patience();
    let handler = {
        let (seen, finished) = (Arc::clone(&seen), Arc::clone(&finished));
        handler_fn(move |incoming: Incoming| {
            let (seen, finished) = (Arc::clone(&seen), Arc::clone(&finished));
            async move {
                let message = &incoming.message;
                let key = message.key().unwrap_or("(none)").to_owned();
                let seq = seq_of(message).unwrap_or(usize::MAX);
                {
                    let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
                    if !seen.in_progress.insert(key.clone()) {
                        seen.problems.push(format!(
                            "message {seq} of `{key}` was handed to the handler while another message of `{key}` was in progress"
                        ));
                    }
                    let expected = seen.next.get(&key).copied().unwrap_or(0);
                    if seq != expected {
                        seen.problems.push(format!(
                            "message {seq} of `{key}` was handled when message {expected} was next (attempt {})",
                            incoming.attempt
                        ));
                    }
                    seen.most_at_once = seen.most_at_once.max(seen.in_progress.len());
                }
                if key == HELD && seq == 0 {
                    let mut others = finished.subscribe();
                    let before = others.borrow_and_update().1;
                    let waited =
                        tokio::time::timeout(patience, others.wait_for(|f| f.1 > before)).await;
                    if waited.is_err() {
                        let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
                        seen.problems.push(format!(
                            "while the first message of `{HELD}` was in progress for {patience:?}, no message of another key was handled: keys are not handled in parallel"
                        ));
                    }
                }
                {
                    let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
                    seen.in_progress.remove(&key);
                    seen.next.insert(key.clone(), seq + 1);
                }
                finished.send_modify(|f| {
                    f.0 += 1;
                    if key != HELD {
                        f.1 += 1;
                    }
                });
                Ok::<_, BoxError>(Vec::<Outgoing>::new())
            }
        })
    };
    let handler = ServiceBuilder::new().layer(KeyLanesLayer).service(handler);
    let options = SubscribeOptions::group(ctx.group("lanes")).max_in_flight(64);
    let router = Router::new(ctx.subscriber().await, ctx.publisher().await)
        .route("lanes", &topic, options, handler);
    let routed = Routed::start(&ctx, router).await;

    let publisher = ctx.publisher().await;
    let messages: Vec<_> = (0..PER_KEY)
        .flat_map(|seq| (0..KEYS).map(move |k| (seq, k)))
        .enumerate()
        .map(|(n, (seq, k))| numbered(ctx.scenario, n, Some(&format!("key-{k}")), Some(seq)))
        .collect();
    ctx.publish_all(&*publisher, &topic, &messages, 20).await;

    let total = KEYS * PER_KEY;
    let waited = ctx
        .bounded(
            format!("all {total} messages handled through the router"),
            finished_rx.wait_for(|f| f.0 >= total),
        )
        .await
        .is_ok();
    ctx.check(waited, || "the handler's record was dropped".to_owned());
    routed.stop(&ctx).await;
    let seen = seen.lock().unwrap_or_else(|e| e.into_inner());
    ctx.check(seen.problems.is_empty(), || {
        format!(
            "{} problems, e.g. {:?}",
            seen.problems.len(),
            &seen.problems[..seen.problems.len().min(5)]
        )
    });
    for k in 0..KEYS {
        let key = format!("key-{k}");
        let next = seen.next.get(&key).copied().unwrap_or(0);
        ctx.check(next == PER_KEY, || {
            format!("key `{key}`: handled up to message {next}, expected all {PER_KEY}")
        });
    }
    ctx.check(seen.most_at_once >= 2, || {
        format!(
            "at most {} key(s) were in progress at once, expected several",
            seen.most_at_once
        )
    });
    Outcome::Passed
}
