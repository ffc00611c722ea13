//! A member's subscription (the deliveries its hub hands it) and the
//! acker of each delivery.

use std::sync::Arc;
use std::time::Duration;

use plexus_core::bus::{Acker, BoxFuture, BusError, Delivery, Subscription};

use super::hub::{Answer, Hub, Refused, Token};

/// How long an acknowledgement waits for the commit carrying it.
const COMMIT_WAIT: Duration = Duration::from_secs(30);

/// What a member and its deliveries share.
pub(crate) struct Shared {
    pub(crate) hub: Arc<Hub>,
    pub(crate) topic: Arc<str>,
    /// The backend's name in errors.
    pub(crate) name: Arc<str>,
}

/// Leaves the hub when the subscription is dropped.
struct Member {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for Member {
    fn drop(&mut self) {
        self.shared.hub.leave(self.id);
    }
}

/// The subscription of member `id` (already joined).
pub(crate) fn subscription(shared: Arc<Shared>, id: u64) -> Subscription {
    let member = Member { shared, id };
    Subscription::new(futures::stream::unfold(member, |member| async move {
        let delivery = next(&member).await?;
        Some((Ok(delivery), member))
    }))
}

/// The member's next delivery; `None` once the hub stopped.
async fn next(member: &Member) -> Option<Delivery> {
    let shared = &member.shared;
    loop {
        let woken = shared.hub.wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        if shared.hub.stop.is_cancelled() {
            return None;
        }
        if let Some(taken) = shared.hub.take(member.id) {
            let acker = KafkaAcker {
                shared: Arc::clone(shared),
                token: Some(taken.token),
            };
            return Some(Delivery::new(
                taken.message,
                Arc::clone(&shared.topic),
                taken.attempt,
                Box::new(acker),
            ));
        }
        tokio::select! {
            () = woken => {}
            () = shared.hub.stop.cancelled() => return None,
        }
    }
}

/// Answers one delivery; dropped unanswered, it nacks at once.
struct KafkaAcker {
    shared: Arc<Shared>,
    /// `None` once answered.
    token: Option<Token>,
}

impl KafkaAcker {
    async fn answer(mut self: Box<Self>, answer: Answer) -> Result<(), BusError> {
        let shared = Arc::clone(&self.shared);
        let Some(token) = self.token.take() else {
            return Ok(());
        };
        let ticket = match shared.hub.answer(token, answer) {
            Ok(ticket) => ticket,
            Err(Refused::Closed) => {
                return Err(BusError::Closed {
                    backend: shared.name.to_string(),
                    what: "subscriber",
                });
            }
            Err(Refused::Stale) => {
                return Err(BusError::backend(
                    &*shared.name,
                    format!(
                        "answering a delivery of `{}`: it passed its ack deadline, or its \
                         partition went to another member of the group; it is delivered again",
                        shared.topic
                    ),
                ));
            }
        };
        let Some(ticket) = ticket else {
            return Ok(());
        };
        let mut committed = shared.hub.committed.subscribe();
        let waited =
            tokio::time::timeout(COMMIT_WAIT, committed.wait_for(|(n, _)| *n >= ticket)).await;
        let failed = |reason: String| {
            BusError::backend(
                &*shared.name,
                format!(
                    "committing an acknowledgement on `{}` failed: {reason}; the message will be \
                     delivered again",
                    shared.topic
                ),
            )
        };
        match waited {
            Ok(Ok(result)) => result.1.clone().map_err(failed),
            Ok(Err(_)) => Err(failed("the consumer stopped".to_owned())),
            Err(_) => Err(failed(format!("no commit within {COMMIT_WAIT:?}"))),
        }
    }
}

impl Drop for KafkaAcker {
    fn drop(&mut self) {
        if let Some(token) = self.token.take() {
            let _ = self.shared.hub.answer(token, Answer::Nack(Duration::ZERO));
        }
    }
}

impl Acker for KafkaAcker {
    fn ack(self: Box<Self>) -> BoxFuture<'static, Result<(), BusError>> {
        Box::pin(self.answer(Answer::Ack))
    }

    fn nack(self: Box<Self>, delay: Duration) -> BoxFuture<'static, Result<(), BusError>> {
        Box::pin(self.answer(Answer::Nack(delay)))
    }
}
