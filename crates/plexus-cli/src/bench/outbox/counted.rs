//! [`Counted`]: the destination as one measurement sees it, counting the
//! messages it accepted and when, so that the measurement ends the moment
//! the last one is accepted (the relay and the raw publishes alike go
//! through it).

use std::sync::Arc;
use std::time::Duration;

use plexus_core::Message;
use plexus_core::bus::{BoxFuture, BusError, Features, Publisher};
use tokio::sync::watch;
use tokio::time::Instant;

/// What the destination accepted so far.
#[derive(Debug, Clone, Copy)]
pub struct Accepted {
    /// Messages accepted.
    pub messages: u64,
    /// When the last publish that counted returned.
    pub at: Instant,
}

/// A [`Publisher`] that publishes through the shared destination and
/// counts what it accepted. Closing it does not close the destination,
/// which outlives every measurement.
pub struct Counted {
    inner: Arc<dyn Publisher>,
    accepted: watch::Sender<Accepted>,
}

impl Counted {
    /// Counts, from zero, what `inner` accepts through the new value.
    pub fn new(inner: Arc<dyn Publisher>) -> Arc<Self> {
        let (accepted, _) = watch::channel(Accepted {
            messages: 0,
            at: Instant::now(),
        });
        Arc::new(Counted { inner, accepted })
    }

    /// Messages accepted so far.
    pub fn messages(&self) -> u64 {
        self.accepted.borrow().messages
    }

    /// Waits until at least `messages` were accepted, for at most
    /// `limit`; says when the count was reached.
    pub async fn reached(&self, messages: u64, limit: Duration) -> anyhow::Result<Accepted> {
        let mut receiver = self.accepted.subscribe();
        match tokio::time::timeout(limit, receiver.wait_for(|a| a.messages >= messages)).await {
            Ok(Ok(accepted)) => Ok(*accepted),
            // The sender is `self`'s: it cannot be gone while we wait.
            Ok(Err(_)) => anyhow::bail!("the destination's counter is gone"),
            Err(_) => anyhow::bail!(
                "the destination accepted {} of {messages} messages within {limit:?}; \
                 check that the destination is up and keeping up",
                self.messages()
            ),
        }
    }
}

impl Publisher for Counted {
    fn publish<'a>(
        &'a self,
        topic: &'a str,
        batch: Vec<Message>,
    ) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(async move {
            let count = batch.len() as u64;
            self.inner.publish(topic, batch).await?;
            let at = Instant::now();
            self.accepted.send_modify(|accepted| {
                accepted.messages += count;
                accepted.at = at;
            });
            Ok(())
        })
    }

    fn close(&self) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(async { Ok(()) })
    }

    fn features(&self) -> Features {
        self.inner.features()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plexus_bus::memory::MemoryBus;

    #[tokio::test]
    async fn counts_what_the_destination_accepted() {
        let counted = Counted::new(Arc::new(MemoryBus::new()));
        let message = || {
            Message::builder("t", "/s")
                .payload("text/plain", "x")
                .build()
                .unwrap()
        };
        counted
            .publish("a", vec![message(), message()])
            .await
            .unwrap();
        assert_eq!(counted.messages(), 2);
        let reached = counted.reached(2, Duration::from_secs(1)).await.unwrap();
        assert_eq!(reached.messages, 2);
        let error = counted
            .reached(3, Duration::from_millis(20))
            .await
            .unwrap_err();
        assert!(error.to_string().contains("accepted 2 of 3"), "{error}");
    }
}
