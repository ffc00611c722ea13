//! [`Forwarder`]: moves the messages of a topic on one bus to a topic on
//! another (or the same) bus, acknowledging each at its source only once
//! the destination has accepted it.
//!
//! The forwarder is a member of a consumer group on the source topic (a
//! group it starts begins at the earliest message the source keeps, so
//! that what was written before the first forwarder ran goes too; the
//! source must offer replay). It takes what the group delivers, as many as are ready up to its batch
//! size, publishes them to the destination in delivery order as one
//! batch, and acknowledges them once the publish returns. So nothing is
//! lost: a crash between the publish and the acks delivers those messages
//! again, and they are published again (at least once; a consumer's
//! inbox drops the duplicates). One publish is out at a time, so the
//! destination receives a key's messages in the order the source delivers
//! them; the acknowledgements of the last few batches run meanwhile
//! ([`Forwarder::acks_ahead`]), so a source that commits each ack (a
//! database) does not stall the next publish.
//!
//! Where the source offers exclusive groups
//! ([`SubscribeOptions::exclusive`]), one forwarder of the group forwards
//! at a time, in the source's order, and the others stand by to take over
//! when it goes; the source keeps a position, not a record per message.
//! Elsewhere several forwarders of one group share the topic, and a
//! source with per-key order gives each key to one of them at a time.
//!
//! When the destination refuses a batch for a while (down, full), its
//! messages go back to the source (a nack) and the forwarder waits before
//! taking more, doubling the wait up to a bound. When it refuses one for
//! good (a message too large for it, a topic name it does not take), the
//! messages go back too and the forwarder stops with the error: nothing
//! is dropped, and the cause is for an operator to fix.
//!
//! When the source's subscription fails for a while (its connection or
//! session lost, the server restarting), the forwarder sends back what it
//! holds and subscribes again after the same doubling waits, until the
//! source answers: its group then delivers again what was not
//! acknowledged. Each such failure is logged and counted
//! ([`Forwarded::source_failures`]). Any other failure of the source ends
//! the forwarder with the error.

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures::StreamExt as _;
use futures::future::join_all;
use futures::stream::FuturesUnordered;
use plexus_core::Message;
use plexus_core::bus::{Acker, BusError, Delivery, Publisher, SubscribeOptions, Subscriber};
use tokio::sync::mpsc;

use crate::lag::LagMeter;

/// Moves messages from a topic of one bus to a topic of another (see the
/// module).
pub struct Forwarder {
    source: Arc<dyn Subscriber>,
    from: String,
    group: String,
    destination: Arc<dyn Publisher>,
    to: String,
    batch: usize,
    retry: Duration,
    max_retry: Duration,
    lag: Option<LagMeter>,
    ack_deadline: Option<Duration>,
    acks_ahead: usize,
}

/// What a forwarder did until it stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Forwarded {
    /// Messages the destination accepted.
    pub messages: u64,
    /// Batches the destination refused for a while, sent back to the
    /// source to be taken again.
    pub refused_batches: u64,
    /// Times the source's subscription failed for a while (or subscribing
    /// again did) and the forwarder subscribed again.
    pub source_failures: u64,
}

impl Forwarder {
    /// Forwards `from` on `source`, as a member of consumer group `group`,
    /// to `to` on `destination`; batches of at most 100, a first wait of
    /// 100 ms after a refusal, doubling up to 5 s.
    pub fn new(
        source: Arc<dyn Subscriber>,
        from: impl Into<String>,
        group: impl Into<String>,
        destination: Arc<dyn Publisher>,
        to: impl Into<String>,
    ) -> Self {
        Forwarder {
            source,
            from: from.into(),
            group: group.into(),
            destination,
            to: to.into(),
            batch: 100,
            retry: Duration::from_millis(100),
            max_retry: Duration::from_secs(5),
            lag: None,
            ack_deadline: None,
            acks_ahead: 4,
        }
    }

    /// The most messages one publish to the destination carries (at least
    /// 1), which is also the most the forwarder holds from the source.
    pub fn batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// The first wait after the destination refused a batch or the source
    /// failed, and the bound the doubling waits stop at.
    pub fn retry(mut self, first: Duration, max: Duration) -> Self {
        self.retry = first;
        self.max_retry = max.max(first);
        self
    }

    /// How many batches the destination accepted may still be being
    /// acknowledged at the source while the forwarder publishes the next
    /// (4 by default; 0: each batch's acks end before the next is taken).
    /// Publishes stay one at a time, in delivery order; this only keeps
    /// the source's acknowledgement (a commit, on a database) off the
    /// path from one batch to the next. The forwarder holds at most
    /// `batch × (acks_ahead + 1)` messages from the source.
    pub fn acks_ahead(mut self, batches: usize) -> Self {
        self.acks_ahead = batches;
        self
    }

    /// How long the source waits for this forwarder's answer before it
    /// delivers a message again (to another forwarder of the group): how
    /// soon the messages a crashed forwarder held move again. The source's
    /// default unless set.
    pub fn ack_deadline(mut self, deadline: Duration) -> Self {
        self.ack_deadline = Some(deadline);
        self
    }

    /// Records into `meter`, for each message the destination accepted,
    /// the time since the message's `time` (see [`LagMeter`]): for an
    /// outbox, its commit → publish lag.
    pub fn lag(mut self, meter: LagMeter) -> Self {
        self.lag = Some(meter);
        self
    }

    /// Forwards until `shutdown` completes or the source's subscription
    /// ends; the batch in hand is finished first. Errors when the first
    /// subscribing fails, when the source fails in a way waiting does not
    /// mend, or when the destination refuses a batch for good (its
    /// messages sent back to the source first).
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<Forwarded, BusError> {
        let mut reader = self.read().await?;
        let mut done = Forwarded::default();
        let mut wait = self.retry;
        let mut acking = FuturesUnordered::new();
        tokio::pin!(shutdown);
        let outcome = 'run: loop {
            let items = tokio::select! {
                biased;
                () = &mut shutdown => break 'run Ok(()),
                Some(()) = acking.next(), if !acking.is_empty() => continue,
                items = reader.next_batch(self.batch), if acking.len() < self.acks_ahead.max(1) => match items {
                    Some(items) => items,
                    None => break 'run Ok(()),
                },
            };
            let mut messages = Vec::with_capacity(items.len());
            let mut ackers = Vec::with_capacity(items.len());
            let mut failed = None;
            for item in items {
                match item {
                    Ok(delivery) => {
                        let (message, _, _, acker) = delivery.into_parts();
                        messages.push(message);
                        ackers.push(acker);
                    }
                    Err(error) => failed = Some(error),
                }
            }
            if let Some(error) = failed {
                send_back(ackers, Duration::ZERO).await;
                if !passing(&error) {
                    break 'run Err(error);
                }
                done.source_failures += 1;
                tracing::warn!(from = %self.from, %error, retry_in = ?wait, "the source's subscription failed; subscribing again");
                finish(&mut acking).await;
                reader.stop().await;
                match self.again(shutdown.as_mut(), &mut wait, &mut done).await? {
                    Some(again) => reader = again,
                    None => return Ok(done),
                }
                continue;
            }
            match self.publish(messages).await {
                Ok(count) => {
                    done.messages += count;
                    wait = self.retry;
                    let acks = acknowledge(ackers);
                    if self.acks_ahead == 0 {
                        acks.await;
                    } else {
                        acking.push(acks);
                    }
                }
                Err(error) if passing(&error) => {
                    done.refused_batches += 1;
                    tracing::warn!(from = %self.from, to = %self.to, %error, retry_in = ?wait, "the destination refused a batch; sent back to the source");
                    // What was read after the refused batch goes back too,
                    // and reading starts again after the wait: the source
                    // then delivers the batch before what followed it.
                    finish(&mut acking).await;
                    send_back(ackers, wait).await;
                    reader.stop().await;
                    match self.again(shutdown.as_mut(), &mut wait, &mut done).await? {
                        Some(again) => reader = again,
                        None => return Ok(done),
                    }
                }
                Err(error) => {
                    send_back(ackers, Duration::ZERO).await;
                    break 'run Err(error);
                }
            }
        };
        finish(&mut acking).await;
        reader.stop().await;
        outcome.map(|()| done)
    }

    /// Waits `wait` (doubling it for the next time, up to the bound) and
    /// subscribes again, waiting and trying again while the source fails
    /// for a while; `None` when `shutdown` came first.
    async fn again(
        &self,
        mut shutdown: std::pin::Pin<&mut impl Future<Output = ()>>,
        wait: &mut Duration,
        done: &mut Forwarded,
    ) -> Result<Option<Reader>, BusError> {
        loop {
            tokio::select! {
                () = &mut shutdown => return Ok(None),
                () = tokio::time::sleep(*wait) => {}
            }
            *wait = (*wait * 2).min(self.max_retry);
            match self.read().await {
                Ok(reader) => return Ok(Some(reader)),
                Err(error) if passing(&error) => {
                    done.source_failures += 1;
                    tracing::warn!(from = %self.from, %error, retry_in = ?*wait, "subscribing to the source again failed; trying again");
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Subscribes to the source (an exclusive group where it offers one:
    /// one forwarder of the group at a time, the others standing by) and
    /// starts a reader taking deliveries ahead while a batch is published,
    /// so that the source's claims and the destination's publishes
    /// overlap.
    async fn read(&self) -> Result<Reader, BusError> {
        // The batch in hand, the ones being acknowledged, and what the
        // reader took ahead.
        let held = self
            .batch
            .saturating_mul(self.acks_ahead.saturating_add(1 + PREFETCH_BATCHES));
        let mut options = SubscribeOptions::group(self.group.clone())
            .max_in_flight(held)
            .from_earliest();
        if let Some(deadline) = self.ack_deadline {
            options = options.ack_deadline(deadline);
        }
        if self.source.features().exclusive_groups {
            options = options.exclusive();
        }
        let mut subscription = self.source.subscribe(&self.from, options).await?;
        let (ahead, taken) = mpsc::channel(self.batch.saturating_mul(PREFETCH_BATCHES));
        let task = tokio::spawn(async move {
            while let Some(item) = subscription.next().await {
                if ahead.send(item).await.is_err() {
                    break;
                }
            }
        });
        Ok(Reader {
            task: AbortOnDrop(task),
            taken,
        })
    }

    /// Publishes `messages` to the destination; the count published.
    async fn publish(&self, messages: Vec<Message>) -> Result<u64, BusError> {
        let count = messages.len() as u64;
        let times: Vec<_> = match &self.lag {
            Some(_) => messages.iter().map(Message::time).collect(),
            None => Vec::new(),
        };
        self.destination.publish(&self.to, messages).await?;
        if let Some(meter) = &self.lag {
            meter.record_all_since(times);
        }
        Ok(count)
    }
}

/// Batches the forwarder's reader takes from the source ahead of the one
/// being published.
const PREFETCH_BATCHES: usize = 2;

/// The source's subscription, read ahead by a task.
struct Reader {
    task: AbortOnDrop,
    taken: mpsc::Receiver<Result<Delivery, BusError>>,
}

impl Reader {
    /// The deliveries read ahead, up to `batch` of them, waiting for the
    /// first; `None` once the source's subscription ended. All that is
    /// ready is taken in one step: a batch is cut short only when the
    /// reader is behind, never by the runtime's per-task budget (taking
    /// them one by one, a budget running out midway yielded a partial
    /// batch, and more, smaller publishes).
    async fn next_batch(&mut self, batch: usize) -> Option<Vec<Result<Delivery, BusError>>> {
        let mut items = Vec::with_capacity(batch);
        match self.taken.recv_many(&mut items, batch).await {
            0 => None,
            _ => Some(items),
        }
    }

    /// Stops reading and sends what was read ahead back to the source.
    async fn stop(self) {
        let Reader { task, mut taken } = self;
        drop(task);
        let mut items = Vec::new();
        while taken.recv_many(&mut items, usize::MAX).await > 0 {
            let ackers = items
                .drain(..)
                .filter_map(Result::ok)
                .map(|delivery| delivery.into_parts().3)
                .collect();
            send_back(ackers, Duration::ZERO).await;
        }
    }
}

/// Stops the reader task when the forwarder stops (or is dropped); the
/// deliveries it took ahead are then sent back to the source.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Waits for the acknowledgements under way.
async fn finish<F: Future<Output = ()>>(acking: &mut FuturesUnordered<F>) {
    while acking.next().await.is_some() {}
}

/// Whether a bus that failed with `error` may answer later (it was down,
/// unreachable or full), rather than never: a destination's refusal, or
/// the source's subscription failing.
fn passing(error: &BusError) -> bool {
    matches!(error, BusError::Backend { .. } | BusError::Full { .. })
}

/// Acknowledges deliveries the destination accepted. An ack that fails
/// leaves its message to come again and be published again: logged, as
/// the duplicate it makes.
///
/// Each ack is polled once as it is made: one that a source answers at
/// once (an exclusive group's) ends there, and only the others are kept
/// to wait on together.
async fn acknowledge(ackers: Vec<Box<dyn Acker>>) {
    let failed = |error: BusError| {
        tracing::warn!(%error, "acknowledging a forwarded message failed; it will be forwarded again");
    };
    let mut waiting = FuturesUnordered::new();
    for acker in ackers {
        let mut ack = acker.ack();
        match futures::poll!(ack.as_mut()) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(error)) => failed(error),
            Poll::Pending => waiting.push(ack),
        }
    }
    while let Some(result) = waiting.next().await {
        if let Err(error) = result {
            failed(error);
        }
    }
}

/// Sends deliveries back to the source, to come again after `delay`.
async fn send_back(ackers: Vec<Box<dyn Acker>>, delay: Duration) {
    for result in join_all(ackers.into_iter().map(|acker| acker.nack(delay))).await {
        if let Err(error) = result {
            tracing::warn!(%error, "sending a message back to its source failed; it comes again at its ack deadline");
        }
    }
}
