//! [`KeyLanesLayer`]: the messages of one key are handled one at a time,
//! in the order the router calls with them; different keys in parallel.
//!
//! Each call takes a ticket for its key when it is made (so the order is
//! the call order, not the order in which tasks happen to run) and starts
//! the handler when every earlier ticket of that key has finished or been
//! dropped. Messages without a key are not held back. The table holds only
//! keys with calls in progress, so it is bounded by the router's in-flight
//! bound.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use tokio::sync::Notify;
use tower::{BoxError, ServiceExt as _};

use super::{Incoming, Outgoing};

/// Makes [`KeyLanes`] services.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyLanesLayer;

impl<S> tower::Layer<S> for KeyLanesLayer {
    type Service = KeyLanes<S>;

    fn layer(&self, inner: S) -> KeyLanes<S> {
        KeyLanes {
            inner,
            lanes: Arc::default(),
        }
    }
}

/// One key at a time, keys in parallel (see the module documentation).
#[derive(Debug, Clone)]
pub struct KeyLanes<S> {
    inner: S,
    lanes: Arc<Mutex<HashMap<String, Lane>>>,
}

#[derive(Debug, Default)]
struct Lane {
    /// The next ticket to hand out.
    next: u64,
    /// The ticket whose turn it is.
    serving: u64,
    /// Tickets finished or dropped before their turn came.
    done_early: BTreeSet<u64>,
    turn: Arc<Notify>,
}

fn lock(lanes: &Mutex<HashMap<String, Lane>>) -> MutexGuard<'_, HashMap<String, Lane>> {
    lanes.lock().unwrap_or_else(|e| e.into_inner())
}

/// A call's place in its key's lane; finishing (or dropping) it lets the
/// next ticket go.
struct Ticket {
    lanes: Arc<Mutex<HashMap<String, Lane>>>,
    key: String,
    number: u64,
}

impl Ticket {
    /// Waits for this ticket's turn.
    async fn turn(&self) {
        loop {
            let notify = {
                let lanes = lock(&self.lanes);
                let lane = &lanes[&self.key];
                if lane.serving == self.number {
                    return;
                }
                Arc::clone(&lane.turn)
            };
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if lock(&self.lanes)[&self.key].serving == self.number {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut lanes = lock(&self.lanes);
        let Some(lane) = lanes.get_mut(&self.key) else {
            return;
        };
        if lane.serving == self.number {
            lane.serving += 1;
            while lane.done_early.remove(&lane.serving) {
                lane.serving += 1;
            }
        } else {
            lane.done_early.insert(self.number);
        }
        if lane.serving == lane.next {
            lanes.remove(&self.key);
        } else {
            lane.turn.notify_waiters();
        }
    }
}

impl<S> tower::Service<Incoming> for KeyLanes<S>
where
    S: tower::Service<Incoming, Response = Vec<Outgoing>, Error = BoxError>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Vec<Outgoing>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Vec<Outgoing>, BoxError>> + Send>>;

    /// Always ready: each call waits for its inner service's readiness
    /// when its turn comes (so a limit inside the lanes is not reserved by
    /// calls still waiting; put [`tower::limit::ConcurrencyLimitLayer`]
    /// outside to bound waiting calls too).
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, incoming: Incoming) -> Self::Future {
        let Some(key) = incoming.message.key().map(str::to_owned) else {
            return Box::pin(self.inner.clone().oneshot(incoming));
        };
        let ticket = {
            let mut lanes = lock(&self.lanes);
            let lane = lanes.entry(key.clone()).or_default();
            let number = lane.next;
            lane.next += 1;
            Ticket {
                lanes: Arc::clone(&self.lanes),
                key,
                number,
            }
        };
        let inner = self.inner.clone();
        Box::pin(async move {
            ticket.turn().await;
            let result = inner.oneshot(incoming).await;
            drop(ticket);
            result
        })
    }
}
