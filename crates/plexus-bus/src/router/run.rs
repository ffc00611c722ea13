//! The router's loops: one per route, taking deliveries, calling the
//! handler in order and finishing each call on its own task.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use plexus_core::Message;
use plexus_core::bus::{Acker, Publisher, Subscriber};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::{BoxError, Service as _, ServiceExt as _};

use super::running::State;
use super::{BoxHandler, Incoming, Outgoing, Route, Router, RouterError};

pub(super) async fn run(
    router: Router,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), RouterError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut routes = JoinSet::new();
    let count = router.routes.len();
    if count == 0 {
        router.state.send_modify(|s| s.running = true);
    }
    for route in router.routes {
        routes.spawn(run_route(
            route,
            Subscribed {
                state: router.state.clone(),
                routes: count,
            },
            Arc::clone(&router.subscriber),
            Arc::clone(&router.publisher),
            stop_rx.clone(),
            router.drain_timeout,
            router.nack_delay,
        ));
    }
    tokio::pin!(shutdown);
    let mut result = Ok(());
    loop {
        tokio::select! {
            () = &mut shutdown, if !*stop_tx.borrow() => {
                let _ = stop_tx.send(true);
            }
            done = routes.join_next() => match done {
                None => break,
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(error))) => {
                    // One route failed: stop the others too.
                    let _ = stop_tx.send(true);
                    if result.is_ok() {
                        result = Err(error);
                    }
                }
                Some(Err(join)) => {
                    let _ = stop_tx.send(true);
                    tracing::error!(error = %join, "a router route task panicked");
                }
            },
        }
    }
    result
}

/// Counts a route in once it has subscribed.
struct Subscribed {
    state: watch::Sender<State>,
    routes: usize,
}

impl Subscribed {
    fn count(self) {
        self.state.send_modify(|s| {
            s.subscribed += 1;
            if s.subscribed == self.routes {
                s.running = true;
            }
        });
    }
}

async fn run_route(
    route: Route,
    subscribed: Subscribed,
    subscriber: Arc<dyn Subscriber>,
    publisher: Arc<dyn Publisher>,
    mut stop: watch::Receiver<bool>,
    drain_timeout: Duration,
    nack_delay: Duration,
) -> Result<(), RouterError> {
    let Route {
        name,
        topic,
        options,
        mut handler,
    } = route;
    let subscription_error = |source| RouterError::Subscription {
        route: name.clone(),
        topic: topic.clone(),
        source,
    };
    let mut subscription = subscriber
        .subscribe(&topic, options)
        .await
        .map_err(subscription_error)?;
    subscribed.count();
    let mut calls = JoinSet::new();
    let mut outcome = Ok(());
    loop {
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            Some(_) = calls.join_next(), if !calls.is_empty() => {}
            next = subscription.next() => {
                let delivery = match next {
                    None => break,
                    Some(Err(error)) => {
                        outcome = Err(subscription_error(error));
                        break;
                    }
                    Some(Ok(delivery)) => delivery,
                };
                let (message, topic, attempt, acker) = delivery.into_parts();
                let ready = tokio::select! {
                    biased;
                    _ = stop.changed() => None,
                    ready = handler.ready() => Some(ready.map(|_| ())),
                };
                match ready {
                    // Stopping: the delivery goes back unanswered.
                    None => break,
                    Some(Err(source)) => {
                        outcome = Err(RouterError::Handler { route: name.clone(), source });
                        break;
                    }
                    Some(Ok(())) => {}
                }
                let call = handler.call(Incoming { message, topic, attempt });
                calls.spawn(finish(
                    call,
                    acker,
                    Arc::clone(&publisher),
                    name.clone(),
                    nack_delay,
                ));
            }
        }
    }
    drop(subscription);
    let drained = tokio::time::timeout(drain_timeout, async {
        while calls.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            route = %name,
            left = calls.len(),
            "router shutdown: calls still running after the drain timeout are stopped; their messages will be delivered again"
        );
        calls.abort_all();
        while calls.join_next().await.is_some() {}
    }
    outcome
}

/// Waits for one call; publishes its outputs and acks, or nacks.
async fn finish(
    call: <BoxHandler as tower::Service<Incoming>>::Future,
    acker: Box<dyn Acker>,
    publisher: Arc<dyn Publisher>,
    route: String,
    nack_delay: Duration,
) {
    let outputs = match call.await {
        Ok(outputs) => outputs,
        Err(error) => {
            tracing::debug!(route = %route, error = %error, "handler failed; the message will be delivered again");
            let _ = acker.nack(nack_delay).await;
            return;
        }
    };
    if let Err(error) = publish_all(publisher.as_ref(), outputs).await {
        tracing::warn!(route = %route, error = %error, "cannot publish a handler's outputs; the message will be delivered again");
        let _ = acker.nack(nack_delay).await;
        return;
    }
    if let Err(error) = acker.ack().await {
        tracing::warn!(route = %route, error = %error, "cannot acknowledge; the message will be delivered again");
    }
}

/// Publishes outputs, one batch per topic, topics in order of first
/// appearance.
async fn publish_all(publisher: &dyn Publisher, outputs: Vec<Outgoing>) -> Result<(), BoxError> {
    let mut order: Vec<String> = Vec::new();
    let mut batches: BTreeMap<String, Vec<Message>> = BTreeMap::new();
    for Outgoing { topic, message } in outputs {
        if !batches.contains_key(&topic) {
            order.push(topic.clone());
        }
        batches.entry(topic).or_default().push(message);
    }
    for topic in order {
        let batch = batches.remove(&topic).unwrap_or_default();
        publisher.publish(&topic, batch).await?;
    }
    Ok(())
}
