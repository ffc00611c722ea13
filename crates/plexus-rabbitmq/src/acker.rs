//! [`RabbitAcker`]: answers one delivery on its channel, once; the
//! subscription's ack deadline and a dropped delivery return it to the
//! queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use lapin::ChannelStatus;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use plexus_core::bus::{Acker, BoxFuture, BusError};
use tokio_util::sync::CancellationToken;

use crate::bus::Shared;

/// How long an answer waits for the connection to take it before it
/// fails (the channel is gone; the broker returns the message itself).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

const PENDING: u8 = 0;
const ANSWERED: u8 = 1;
const EXPIRED: u8 = 2;

/// One channel's consuming, shared by its deliveries: an answer on a
/// channel that is gone fails at once instead of waiting for a connection
/// that will never take it.
pub(crate) struct Session {
    status: ChannelStatus,
    /// Cancelled when the subscription stops consuming on the channel.
    ended: CancellationToken,
}

impl Session {
    pub(crate) fn new(status: ChannelStatus) -> Self {
        Session {
            status,
            ended: CancellationToken::new(),
        }
    }

    /// Ends the session: answers still waiting fail.
    pub(crate) fn end(&self) {
        self.ended.cancel();
    }

    /// Whether the channel is open and still consumed on.
    pub(crate) fn alive(&self) -> bool {
        !self.ended.is_cancelled() && self.status.connected()
    }

    /// Runs `answer` (an ack, nack or reject) unless or until the channel
    /// is gone: `Ok(false)` when it is (or the answer was not sent).
    pub(crate) async fn settle(
        &self,
        answer: impl Future<Output = lapin::Result<bool>>,
    ) -> lapin::Result<bool> {
        if !self.alive() {
            return Ok(false);
        }
        tokio::select! {
            // An answer that went out counts, even if the session ended
            // at the same moment.
            biased;
            answered = answer => answered,
            () = self.ended.cancelled() => Ok(false),
            () = tokio::time::sleep(ANSWER_TIMEOUT) => Ok(false),
        }
    }
}

/// One delivery's state, shared by its acker and its subscription (which
/// returns it at the ack deadline): whoever moves it out of pending
/// answers the broker.
pub(crate) struct Slot {
    state: AtomicU8,
    acker: lapin::Acker,
    session: Arc<Session>,
}

impl Slot {
    pub(crate) fn new(acker: lapin::Acker, session: Arc<Session>) -> Self {
        Slot {
            state: AtomicU8::new(PENDING),
            acker,
            session,
        }
    }

    /// Returns the message to the queue (a nack with requeue), unless the
    /// channel is gone (then the broker did).
    async fn requeue(&self) -> lapin::Result<bool> {
        self.session.settle(self.acker.nack(requeue())).await
    }

    /// Whether nobody answered it yet.
    pub(crate) fn is_pending(&self) -> bool {
        self.state.load(Ordering::Acquire) == PENDING
    }

    /// Whether its ack deadline passed unanswered.
    pub(crate) fn is_expired(&self) -> bool {
        self.state.load(Ordering::Acquire) == EXPIRED
    }

    fn claim(&self, to: u8) -> bool {
        self.state
            .compare_exchange(PENDING, to, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// At the ack deadline: returns the message to the queue unless it was
    /// answered.
    pub(crate) async fn expire(&self) {
        if self.claim(EXPIRED) {
            let _ = self.requeue().await;
        }
    }
}

fn requeue() -> BasicNackOptions {
    BasicNackOptions {
        multiple: false,
        requeue: true,
    }
}

/// Answers a delivery; dropped unanswered, returns it to the queue at once.
pub(crate) struct RabbitAcker {
    pub(crate) slot: Arc<Slot>,
    pub(crate) shared: Arc<Shared>,
}

impl RabbitAcker {
    /// The error of an answer the channel could not take.
    fn lost(&self) -> BusError {
        self.shared.error(
            "answering a delivery",
            "its channel is closed (the connection was lost or the subscription ended); the \
             message will be delivered again unless the broker took the answer as the channel \
             closed",
        )
    }

    async fn ack(&self) -> Result<(), BusError> {
        // Answered after the deadline: ignored (it was returned already).
        if !self.slot.claim(ANSWERED) {
            return Ok(());
        }
        let slot = &self.slot;
        match slot
            .session
            .settle(slot.acker.ack(BasicAckOptions::default()))
            .await
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(self.lost()),
            Err(e) => Err(self.shared.error("acknowledging a delivery", e)),
        }
    }

    async fn nack(&self, delay: Duration) -> Result<(), BusError> {
        if !self.slot.claim(ANSWERED) {
            return Ok(());
        }
        if delay.is_zero() {
            return match self.slot.requeue().await {
                Ok(true) => Ok(()),
                Ok(false) => Err(self.lost()),
                Err(e) => Err(self.shared.error("nacking a delivery", e)),
            };
        }
        if !self.slot.session.alive() {
            return Err(self.lost());
        }
        // Held unanswered for `delay`, then returned: the broker delivers
        // it to nobody meanwhile. Closing the bus ends the wait (closing
        // the channel returns the message).
        let slot = Arc::clone(&self.slot);
        let closed = self.shared.closed.clone();
        self.shared.tasks.spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(delay) => {
                    let _ = slot.requeue().await;
                }
                () = closed.cancelled() => {}
            }
        });
        Ok(())
    }
}

impl Drop for RabbitAcker {
    /// A delivery dropped unanswered goes back to the queue at once, not
    /// at its ack deadline.
    fn drop(&mut self) {
        if self.slot.claim(ANSWERED)
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let slot = Arc::clone(&self.slot);
            runtime.spawn(async move {
                let _ = slot.requeue().await;
            });
        }
    }
}

impl Acker for RabbitAcker {
    fn ack(self: Box<Self>) -> BoxFuture<'static, Result<(), BusError>> {
        Box::pin(async move { RabbitAcker::ack(&self).await })
    }

    fn nack(self: Box<Self>, delay: Duration) -> BoxFuture<'static, Result<(), BusError>> {
        Box::pin(async move { RabbitAcker::nack(&self, delay).await })
    }
}
