//! Parked claims: a claim that found nothing waits at the writer, which
//! runs it again inside the next transaction that gives its topic
//! something (a publish, a nack, the ack of a keyed message) — so the
//! deliveries leave with the commit that wrote them, without a wake-up
//! and a commit of their own — or answers it empty when it is due (the
//! member's poll for other processes' writes, or when something of its
//! group falls due).

use std::sync::Arc;
use std::time::Duration;

use plexus_core::bus::BusError;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{Claimed, Writer, now_ms};

/// A lease whose claim's answer found nobody waiting: returned (a nack
/// without delay) in the next transaction.
pub(super) struct Returned {
    pub(super) topic: Arc<str>,
    pub(super) group_id: i64,
    pub(super) seq: i64,
    pub(super) attempt: u32,
}

/// A claim waiting for its topic.
pub(super) struct Parked {
    pub(super) topic: Arc<str>,
    pub(super) topic_id: i64,
    pub(super) group_id: i64,
    pub(super) max: usize,
    pub(super) ack_deadline: Duration,
    /// Answered empty from then on.
    pub(super) until: Instant,
    pub(super) reply: oneshot::Sender<Result<Claimed, BusError>>,
}

impl Parked {
    /// Sends `claimed` if it leased something or found the group gone;
    /// otherwise the claim stays parked (`Some`), until the earlier of its
    /// time and when something of its group falls due. Leases nobody
    /// received (the subscription went away meanwhile) go to `returns`.
    pub(super) fn settle(
        mut self,
        claimed: Claimed,
        returns: &mut Vec<Returned>,
    ) -> Option<Parked> {
        if !claimed.leased.is_empty() || claimed.gone {
            if let Err(Ok(claimed)) = self.reply.send(Ok(claimed)) {
                returns.extend(
                    claimed
                        .leased
                        .into_iter()
                        .map(|(seq, attempt, _)| Returned {
                            topic: Arc::clone(&self.topic),
                            group_id: self.group_id,
                            seq,
                            attempt,
                        }),
                );
            }
            return None;
        }
        if let Some(due) = claimed.next_due_ms {
            let wait = u64::try_from(due.saturating_sub(now_ms())).unwrap_or(0);
            self.until = self
                .until
                .min(Instant::now() + Duration::from_millis(wait + 1));
        }
        Some(self)
    }
}

impl Writer {
    /// Takes out the parked claims the open transaction may satisfy (their
    /// topic got something); forgets those nobody waits for any more.
    pub(super) fn unpark_woken(&mut self) {
        let wake = &self.effects.wake;
        let mut kept = Vec::with_capacity(self.parked.len());
        for parked in self.parked.drain(..) {
            if parked.reply.is_closed() {
                continue;
            }
            if wake.contains(&parked.topic) {
                self.unparked.push((parked, None));
            } else {
                kept.push(parked);
            }
        }
        self.parked = kept;
    }

    /// After a commit: answers the unparked claims that leased something,
    /// parks the others again. After a rollback (`committed` false): parks
    /// them all again, their leases undone.
    pub(super) fn settle_unparked(&mut self, committed: bool) {
        for (parked, claimed) in std::mem::take(&mut self.unparked) {
            match claimed.filter(|_| committed) {
                Some(claimed) => {
                    let parked = parked.settle(claimed, &mut self.returns);
                    self.parked.extend(parked);
                }
                None => self.parked.push(parked),
            }
        }
    }

    /// When the next parked claim is due.
    pub(super) fn next_parked_due(&self) -> Option<Instant> {
        self.parked.iter().map(|p| p.until).min()
    }

    /// Answers every parked claim empty at once (its member claims again):
    /// another connection wrote to the database.
    pub(super) fn wake_parked(&mut self) {
        for parked in self.parked.drain(..) {
            let _ = parked.reply.send(Ok(Claimed::default()));
        }
    }

    /// Answers the parked claims that are due, empty (their member claims
    /// again), and forgets those nobody waits for.
    pub(super) fn expire_parked(&mut self) {
        let now = Instant::now();
        let mut kept = Vec::with_capacity(self.parked.len());
        for parked in self.parked.drain(..) {
            if parked.reply.is_closed() {
                continue;
            }
            if parked.until <= now {
                let _ = parked.reply.send(Ok(Claimed::default()));
            } else {
                kept.push(parked);
            }
        }
        self.parked = kept;
    }
}
