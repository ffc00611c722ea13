//! [`Tally`]: which numbered messages a group was handed and acknowledged,
//! and [`consume`], the loop of a subscription member.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use futures::StreamExt;
use plexus_core::bus::{Delivery, Subscription};

/// Deliveries and acknowledgements per message number, in one group.
#[derive(Debug, Default, Clone)]
pub(crate) struct Tally {
    pub(crate) delivered: BTreeMap<usize, u32>,
    pub(crate) acked: BTreeMap<usize, u32>,
    /// Messages whose ack returned an error: its outcome is unknown where
    /// the broker does not confirm acks (AMQP's `basic.ack` has no reply),
    /// so the message may have been taken or may come again.
    pub(crate) unconfirmed: BTreeSet<usize>,
    /// Deliveries of a number handed out before.
    pub(crate) repeats: usize,
}

impl Tally {
    pub(crate) fn deliver(&mut self, n: usize) {
        let times = self.delivered.entry(n).or_default();
        *times += 1;
        if *times > 1 {
            self.repeats += 1;
        }
    }

    pub(crate) fn ack(&mut self, n: usize) {
        *self.acked.entry(n).or_default() += 1;
    }

    /// An ack of message `n` failed.
    pub(crate) fn ack_failed(&mut self, n: usize) {
        self.unconfirmed.insert(n);
    }

    /// Whether messages `0..count` were all acknowledged.
    pub(crate) fn all_acked(&self, count: usize) -> bool {
        self.acked.len() >= count && (0..count).all(|n| self.acked.contains_key(&n))
    }

    /// Whether messages `0..count` were all delivered and each either
    /// acknowledged or answered by an ack that failed (taken or not,
    /// nobody can tell).
    pub(crate) fn all_settled(&self, count: usize) -> bool {
        // Checked on every delivery: the count first, the numbers only
        // when there can be enough.
        self.acked.len() + self.unconfirmed.len() >= count
            && (0..count).all(|n| self.acked.contains_key(&n) || self.unconfirmed.contains(&n))
    }

    /// A summary: how many of `count` arrived, which are missing, which
    /// came more than once.
    pub(crate) fn describe(&self, count: usize) -> String {
        let missing: Vec<usize> = (0..count).filter(|n| !self.acked.contains_key(n)).collect();
        let twice: Vec<(usize, u32)> = self
            .delivered
            .iter()
            .filter(|(_, times)| **times > 1)
            .map(|(n, times)| (*n, *times))
            .collect();
        let unconfirmed = if self.unconfirmed.is_empty() {
            String::new()
        } else {
            format!(
                " ({} of them answered by an ack that failed: {:?})",
                self.unconfirmed.len(),
                self.unconfirmed.iter().take(10).collect::<Vec<_>>()
            )
        };
        format!(
            "{} of {count} acknowledged, {} delivered; {} missing{unconfirmed} (first: {:?}); delivered more than once (number, times; first): {:?}",
            self.acked.len(),
            self.delivered.len(),
            missing.len(),
            &missing[..missing.len().min(10)],
            &twice[..twice.len().min(10)],
        )
    }

    /// `Err` naming the first message of `0..count` delivered or
    /// acknowledged other than exactly once, or a number outside it.
    pub(crate) fn exactly_once(&self, count: usize) -> Result<(), String> {
        for n in 0..count {
            let delivered = self.delivered.get(&n).copied().unwrap_or(0);
            let acked = self.acked.get(&n).copied().unwrap_or(0);
            if delivered != 1 || acked != 1 {
                return Err(format!(
                    "message {n} was delivered {delivered} times and acknowledged {acked} times, expected once each; {}",
                    self.describe(count)
                ));
            }
        }
        if let Some(n) = self.delivered.keys().find(|n| **n >= count) {
            return Err(format!(
                "message number {n} was delivered, only 0..{count} were published"
            ));
        }
        Ok(())
    }
}

/// Hands each delivery of `subscription` to `handle` until it returns
/// `Ok(false)`. The stream ending or failing is an error naming `who`
/// (the subscriber is open all along).
pub(crate) async fn consume<F, Fut>(
    mut subscription: Subscription,
    who: String,
    mut handle: F,
) -> Result<(), String>
where
    F: FnMut(Delivery) -> Fut,
    Fut: Future<Output = Result<bool, String>>,
{
    loop {
        match subscription.next().await {
            Some(Ok(delivery)) => {
                if !handle(delivery).await? {
                    return Ok(());
                }
            }
            Some(Err(e)) => return Err(format!("{who}: the subscription yielded an error: {e}")),
            None => {
                return Err(format!(
                    "{who}: the subscription ended although its subscriber is open"
                ));
            }
        }
    }
}
