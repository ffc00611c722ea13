//! [`Ctx`]: one scenario run against one backend, with bounded helpers
//! that fail with the backend's and scenario's name.

use std::fmt::Display;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use plexus_core::Message;
use plexus_core::bus::{BusError, Delivery, Publisher, SubscribeOptions, Subscriber, Subscription};
use tokio::time::timeout;

use crate::Backend;
use crate::outcome::{Need, Outcome, gate};

/// One run of one scenario.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub(crate) backend: &'a Backend,
    pub(crate) scenario: &'static str,
}

impl<'a> Ctx<'a> {
    /// The run, or the skip when the backend lacks one of `needs`.
    pub(crate) fn start(
        backend: &'a Backend,
        scenario: &'static str,
        needs: &[Need],
    ) -> Result<Self, Outcome> {
        match gate(backend, scenario, needs) {
            Some(skipped) => Err(skipped),
            None => Ok(Ctx { backend, scenario }),
        }
    }

    /// Fails the scenario.
    #[track_caller]
    pub(crate) fn fail(&self, what: impl Display) -> ! {
        panic!("[{}] {}: {what}", self.backend.name(), self.scenario)
    }

    /// Fails unless `ok`, with `what` (expected and found).
    #[track_caller]
    pub(crate) fn check(&self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.fail(what())
        }
    }

    /// The longest single wait.
    pub(crate) fn patience(&self) -> Duration {
        self.backend.patience_bound()
    }

    /// A fresh topic name for this scenario (letters, digits, `_`).
    pub(crate) fn topic(&self) -> String {
        format!(
            "conformance_{}_{:016x}",
            self.scenario,
            rand::random::<u64>()
        )
    }

    /// A fresh group name.
    pub(crate) fn group(&self, name: &str) -> String {
        format!("conformance_{name}_{:08x}", rand::random::<u32>())
    }

    /// Waits for `future` at most [`patience`](Self::patience), failing
    /// with `what` when it does not finish.
    pub(crate) async fn bounded<T>(
        &self,
        what: impl Display,
        future: impl Future<Output = T>,
    ) -> T {
        match timeout(self.patience(), future).await {
            Ok(value) => value,
            Err(_) => self.fail(format!(
                "{what}: did not finish within {:?}",
                self.patience()
            )),
        }
    }

    /// A new publisher.
    pub(crate) async fn publisher(&self) -> Arc<dyn Publisher> {
        let made = self
            .bounded("making a publisher", self.backend.make_publisher())
            .await;
        made.unwrap_or_else(|e| self.fail(format!("could not make a publisher: {e}")))
    }

    /// A new subscriber.
    pub(crate) async fn subscriber(&self) -> Arc<dyn Subscriber> {
        let made = self
            .bounded("making a subscriber", self.backend.make_subscriber())
            .await;
        made.unwrap_or_else(|e| self.fail(format!("could not make a subscriber: {e}")))
    }

    /// Subscribes, failing on an error.
    pub(crate) async fn subscribe(
        &self,
        subscriber: &dyn Subscriber,
        topic: &str,
        options: SubscribeOptions,
    ) -> Subscription {
        let what = format!("subscribing to `{topic}` with {options:?}");
        match self
            .bounded(&what, subscriber.subscribe(topic, options.clone()))
            .await
        {
            Ok(subscription) => subscription,
            Err(e) => self.fail(format!("{what}: {e}")),
        }
    }

    /// Publishes one batch, failing on an error.
    pub(crate) async fn publish(
        &self,
        publisher: &dyn Publisher,
        topic: &str,
        batch: Vec<Message>,
    ) {
        let what = format!("publishing a batch of {} to `{topic}`", batch.len());
        if let Err(e) = self.bounded(&what, publisher.publish(topic, batch)).await {
            self.fail(format!("{what}: {e}"))
        }
    }

    /// Publishes `messages` in batches of `batch` (awaited one after the
    /// other, so they are stored in this order).
    pub(crate) async fn publish_all(
        &self,
        publisher: &dyn Publisher,
        topic: &str,
        messages: &[Message],
        batch: usize,
    ) {
        for chunk in messages.chunks(batch) {
            self.publish(publisher, topic, chunk.to_vec()).await;
        }
    }

    /// The subscription's next delivery; fails when none comes within
    /// the patience bound, the stream ends or yields an error.
    pub(crate) async fn next(
        &self,
        subscription: &mut Subscription,
        waiting_for: impl Display,
    ) -> Delivery {
        match timeout(self.patience(), subscription.next()).await {
            Ok(Some(Ok(delivery))) => delivery,
            Ok(Some(Err(e))) => self.fail(format!(
                "waiting for {waiting_for}: the subscription yielded an error: {e}"
            )),
            Ok(None) => self.fail(format!(
                "waiting for {waiting_for}: the subscription ended although its subscriber is open"
            )),
            Err(_) => self.fail(format!(
                "waiting for {waiting_for}: no delivery within {:?}",
                self.patience()
            )),
        }
    }

    /// Acknowledges, failing on an error.
    pub(crate) async fn ack(&self, delivery: Delivery) {
        let id = delivery.message().id().to_owned();
        let what = format!("acknowledging message `{id}`");
        if let Err(e) = self.bounded(&what, delivery.ack()).await {
            self.fail(format!("{what}: {e}"))
        }
    }

    /// Refuses, failing on an error.
    pub(crate) async fn nack(&self, delivery: Delivery, delay: Duration) {
        let id = delivery.message().id().to_owned();
        let what = format!("nacking message `{id}`");
        if let Err(e) = self.bounded(&what, delivery.nack(delay)).await {
            self.fail(format!("{what}: {e}"))
        }
    }

    /// Closes a publisher, failing on an error.
    pub(crate) async fn close_publisher(&self, publisher: &dyn Publisher) {
        if let Err(e) = self.bounded("closing a publisher", publisher.close()).await {
            self.fail(format!("closing a publisher: {e}"))
        }
    }

    /// Closes a subscriber, failing on an error.
    pub(crate) async fn close_subscriber(&self, subscriber: &dyn Subscriber) {
        if let Err(e) = self
            .bounded("closing a subscriber", subscriber.close())
            .await
        {
            self.fail(format!("closing a subscriber: {e}"))
        }
    }

    /// The number of a delivered message, which must be below `count`.
    #[track_caller]
    pub(crate) fn number(&self, delivery: &Delivery, count: usize) -> usize {
        match super::number_of(delivery.message()) {
            Some(n) if n < count => n,
            _ => self.fail(format!(
                "received message `{}` that this scenario did not publish: {:?}",
                delivery.message().id(),
                delivery.message()
            )),
        }
    }

    /// Fails unless `result` is the error `expected` describes.
    #[track_caller]
    pub(crate) fn expect_error<T>(
        &self,
        what: &str,
        result: Result<T, BusError>,
        expected: &str,
        matches: impl FnOnce(&BusError) -> bool,
    ) -> BusError {
        match result {
            Ok(_) => self.fail(format!("{what}: expected {expected}, got Ok")),
            Err(e) if matches(&e) => e,
            Err(e) => self.fail(format!("{what}: expected {expected}, got {e:?} ({e})")),
        }
    }
}
