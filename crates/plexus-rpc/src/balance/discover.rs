//! [`HealthDiscover`]: the endpoints tower's balancer sees — the healthy
//! ones — as a stream of `tower::discover::Change`s.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use tokio_stream::wrappers::WatchStream;
use tower::discover::Change;
use tower::limit::ConcurrencyLimit;
use tower::load::{CompleteOnResponse, PeakEwma};

use super::Health;
use super::fleet::{Fleet, Timed};

/// An endpoint as the balancer holds it: its in-flight calls bounded, its
/// latency measured (its own, and the fleet's).
pub type Endpoint<S> = PeakEwma<Timed<ConcurrencyLimit<S>>, CompleteOnResponse>;

/// How each endpoint is wrapped when it (re)enters the balancer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wrap {
    pub(crate) max_in_flight: usize,
    pub(crate) default_rtt: Duration,
    pub(crate) decay: Duration,
}

/// The `tower::discover::Discover` behind a [`Balance`](super::Balance):
/// inserts an endpoint when it becomes healthy, removes it when it becomes
/// unhealthy.
pub struct HealthDiscover<K, S> {
    services: Vec<S>,
    health: Health<K>,
    changes: WatchStream<u64>,
    /// Which endpoints the balancer holds now.
    inserted: Vec<bool>,
    wrap: Wrap,
    fleet: Fleet,
}

impl<K: PartialEq + Clone + Send + Sync + 'static, S> HealthDiscover<K, S> {
    pub(crate) fn new(services: Vec<S>, health: Health<K>, wrap: Wrap) -> Self {
        let changes = WatchStream::from_changes(health.subscribe());
        HealthDiscover {
            inserted: vec![false; services.len()],
            services,
            health,
            changes,
            wrap,
            fleet: Fleet::default(),
        }
    }
}

// Nothing in it is pinned: it is only ever reached through `get_mut`.
impl<K, S> Unpin for HealthDiscover<K, S> {}

impl<K, S> Stream for HealthDiscover<K, S>
where
    K: PartialEq + Clone + Send + Sync + 'static,
    S: Clone,
{
    type Item = Result<Change<K, Endpoint<S>>, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            for i in 0..this.health.len() {
                let healthy = this.health.is_healthy_at(i);
                if healthy == this.inserted[i] {
                    continue;
                }
                this.inserted[i] = healthy;
                let key = this.health.key(i);
                let change = if healthy {
                    let limited =
                        ConcurrencyLimit::new(this.services[i].clone(), this.wrap.max_in_flight);
                    // A restored endpoint starts at the fleet's latency.
                    let rtt = this.fleet.average().unwrap_or(this.wrap.default_rtt);
                    Change::Insert(
                        key,
                        PeakEwma::new(
                            Timed::new(limited, this.fleet.clone()),
                            rtt,
                            this.wrap.decay.as_nanos() as f64,
                            CompleteOnResponse::default(),
                        ),
                    )
                } else {
                    Change::Remove(key)
                };
                return Poll::Ready(Some(Ok(change)));
            }
            match Pin::new(&mut this.changes).poll_next(cx) {
                Poll::Ready(Some(_)) => continue,
                // The sender lives as long as `health`: never reached.
                Poll::Ready(None) | Poll::Pending => return Poll::Pending,
            }
        }
    }
}
