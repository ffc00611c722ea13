//! The forwarder: everything arrives, in order per key; a destination
//! that refuses for a while loses nothing; one that refuses for good
//! stops the forwarder and leaves the messages at the source; a source
//! that fails for a while is subscribed to again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt as _;
use plexus_bus::forward::{Forwarded, Forwarder};
use plexus_bus::memory::MemoryBus;
use plexus_core::Message;
use plexus_core::bus::{
    BoxFuture, BusError, Features, Publisher, SubscribeOptions, Subscriber, Subscription,
};
use tokio::sync::oneshot;

const WAIT: Duration = Duration::from_secs(10);

/// Message `n`, keyed `k{n % keys}`.
fn keyed(n: usize, keys: usize) -> Message {
    Message::builder("test.event", "/tests")
        .id(format!("m-{n}"))
        .key(format!("k{}", n % keys))
        .payload("text/plain", n.to_string().into_bytes())
        .build()
        .unwrap()
}

fn number(message: &Message) -> usize {
    std::str::from_utf8(message.payload())
        .unwrap()
        .parse()
        .unwrap()
}

/// The numbers of the next `count` deliveries of `subscription`, acked.
async fn receive(subscription: &mut Subscription, count: usize) -> Vec<usize> {
    let mut received = Vec::new();
    while received.len() < count {
        let delivery = tokio::time::timeout(WAIT, subscription.next())
            .await
            .expect("a delivery in time")
            .expect("the subscription goes on")
            .unwrap();
        received.push(number(delivery.message()));
        delivery.ack().await.unwrap();
    }
    received
}

/// A destination that refuses its first `refusals` publishes with
/// `refusal`, then passes them to `inner`.
struct Refusing {
    inner: MemoryBus,
    refusals: AtomicUsize,
    refusal: fn() -> BusError,
}

impl Publisher for Refusing {
    fn publish<'a>(
        &'a self,
        topic: &'a str,
        batch: Vec<Message>,
    ) -> BoxFuture<'a, Result<(), BusError>> {
        let refuse = self
            .refusals
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if refuse {
            let refusal = (self.refusal)();
            return Box::pin(async move { Err(refusal) });
        }
        self.inner.publish(topic, batch)
    }

    fn close(&self) -> BoxFuture<'_, Result<(), BusError>> {
        Publisher::close(&self.inner)
    }

    fn features(&self) -> Features {
        Publisher::features(&self.inner)
    }
}

/// A source whose first subscription fails (a backend error) after
/// `before_failing` deliveries, and whose next `refusals` subscribes fail;
/// then it is `inner`.
struct Failing {
    inner: MemoryBus,
    before_failing: usize,
    subscribes: AtomicUsize,
    refusals: usize,
}

impl Subscriber for Failing {
    fn subscribe<'a>(
        &'a self,
        topic: &'a str,
        options: SubscribeOptions,
    ) -> BoxFuture<'a, Result<Subscription, BusError>> {
        let lost = || BusError::backend("test source", "connection lost");
        let n = self.subscribes.fetch_add(1, Ordering::AcqRel);
        Box::pin(async move {
            let subscription = match n {
                0 => self.inner.subscribe(topic, options).await?,
                n if n <= self.refusals => return Err(lost()),
                _ => return self.inner.subscribe(topic, options).await,
            };
            let failing = subscription
                .take(self.before_failing)
                .chain(futures::stream::once(async move { Err(lost()) }));
            Ok(Subscription::new(failing))
        })
    }

    fn close(&self) -> BoxFuture<'_, Result<(), BusError>> {
        Subscriber::close(&self.inner)
    }

    fn features(&self) -> Features {
        Subscriber::features(&self.inner)
    }
}

/// Forwards `in` on `source` to `out` on `destination` (batches of 10,
/// short waits) on a task of its own; send on the sender to stop it.
fn spawn(
    source: &MemoryBus,
    destination: Arc<dyn Publisher>,
) -> (
    oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<Forwarded, BusError>>,
) {
    spawn_from(Arc::new(source.clone()), destination)
}

/// [`spawn`] from any source.
fn spawn_from(
    source: Arc<dyn Subscriber>,
    destination: Arc<dyn Publisher>,
) -> (
    oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<Forwarded, BusError>>,
) {
    let (stop, stopped) = oneshot::channel::<()>();
    let forwarder = Forwarder::new(source, "in", "relay", destination, "out")
        .batch(10)
        .retry(Duration::from_millis(5), Duration::from_millis(20));
    let task = tokio::spawn(forwarder.run(async move {
        let _ = stopped.await;
    }));
    (stop, task)
}

#[tokio::test]
async fn everything_arrives_in_order_per_key() {
    let (source, destination) = (MemoryBus::new(), MemoryBus::new());
    let mut out = destination
        .subscribe("out", SubscribeOptions::group("audit"))
        .await
        .unwrap();
    let (stop, task) = spawn(&source, Arc::new(destination.clone()));
    for first in (0..250).step_by(50) {
        let batch = (first..first + 50).map(|n| keyed(n, 7)).collect();
        source.publish("in", batch).await.unwrap();
    }
    let received = receive(&mut out, 250).await;
    let mut per_key: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for n in &received {
        per_key.entry(n % 7).or_default().push(*n);
    }
    for (key, numbers) in &per_key {
        assert!(
            numbers.windows(2).all(|w| w[0] < w[1]),
            "key k{key} out of order: {numbers:?}"
        );
    }
    let mut all = received.clone();
    all.sort_unstable();
    assert_eq!(all, (0..250).collect::<Vec<_>>());
    stop.send(()).unwrap();
    let done = task.await.unwrap().unwrap();
    assert_eq!(
        done,
        Forwarded {
            messages: 250,
            refused_batches: 0,
            source_failures: 0,
        }
    );
}

#[tokio::test]
async fn a_destination_down_for_a_while_loses_nothing() {
    let (source, destination) = (MemoryBus::new(), MemoryBus::new());
    let mut out = destination
        .subscribe("out", SubscribeOptions::group("audit"))
        .await
        .unwrap();
    let refusing = Refusing {
        inner: destination.clone(),
        refusals: AtomicUsize::new(3),
        refusal: || BusError::backend("test destination", "down"),
    };
    let (stop, task) = spawn(&source, Arc::new(refusing));
    let batch = (0..40).map(|n| keyed(n, 40)).collect();
    source.publish("in", batch).await.unwrap();
    let mut received = receive(&mut out, 40).await;
    received.sort_unstable();
    assert_eq!(received, (0..40).collect::<Vec<_>>());
    stop.send(()).unwrap();
    let done = task.await.unwrap().unwrap();
    assert_eq!(done.messages, 40);
    assert_eq!(done.refused_batches, 3);
}

#[tokio::test]
async fn a_source_failing_for_a_while_is_subscribed_to_again_and_loses_nothing() {
    let (source, destination) = (MemoryBus::new(), MemoryBus::new());
    let mut out = destination
        .subscribe("out", SubscribeOptions::group("audit"))
        .await
        .unwrap();
    let failing = Failing {
        inner: source.clone(),
        before_failing: 15,
        subscribes: AtomicUsize::new(0),
        refusals: 2,
    };
    let (stop, task) = spawn_from(Arc::new(failing), Arc::new(destination.clone()));
    let batch = (0..40).map(|n| keyed(n, 40)).collect();
    source.publish("in", batch).await.unwrap();
    // Whatever the failure caught unacknowledged comes again: at least
    // once each.
    let mut received = std::collections::BTreeSet::new();
    while received.len() < 40 {
        received.extend(receive(&mut out, 1).await);
    }
    stop.send(()).unwrap();
    let done = task.await.unwrap().expect("the forwarder goes on");
    assert!(done.messages >= 40, "{done:?}");
    // The stream's failure, then the two refused subscribes.
    assert_eq!(done.source_failures, 3, "{done:?}");
}

#[tokio::test]
async fn a_refusal_for_good_stops_the_forwarder_and_keeps_the_messages() {
    let (source, destination) = (MemoryBus::new(), MemoryBus::new());
    let refusing = Refusing {
        inner: destination.clone(),
        refusals: AtomicUsize::new(usize::MAX),
        refusal: || BusError::InvalidTopic {
            topic: "out".to_owned(),
            reason: "not taken here".to_owned(),
        },
    };
    let (_stop, task) = spawn(&source, Arc::new(refusing));
    let batch = (0..5).map(|n| keyed(n, 5)).collect();
    source.publish("in", batch).await.unwrap();
    let error = tokio::time::timeout(WAIT, task)
        .await
        .expect("the forwarder stops")
        .unwrap()
        .unwrap_err();
    assert!(matches!(error, BusError::InvalidTopic { .. }), "{error}");
    // The messages went back to the group: another member takes them.
    let mut member = source
        .subscribe("in", SubscribeOptions::group("relay"))
        .await
        .unwrap();
    let mut received = receive(&mut member, 5).await;
    received.sort_unstable();
    assert_eq!(received, [0, 1, 2, 3, 4]);
}
