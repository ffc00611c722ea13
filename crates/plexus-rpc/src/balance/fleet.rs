//! [`Fleet`]: the typical latency across all endpoints, so that an
//! endpoint (re)entering the balancer starts from it rather than from a
//! fixed guess.
//!
//! PeakEwma gives an endpoint it has not measured a default latency. Were
//! that default fixed, an endpoint restored after a failed health check
//! would be starved while the others answer faster than the default (the
//! balancer always prefers them, so it is never measured), or flooded while
//! they answer slower. Starting it at the fleet's average gives it a fair
//! share at once; its own measurements take over from there.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Instant;
use tower_service::Service;

/// The weight of a new sample in the fleet's average.
const WEIGHT: f64 = 0.1;

/// The fleet's average response latency (nanoseconds; 0 before any).
#[derive(Debug, Clone, Default)]
pub(crate) struct Fleet {
    nanos: Arc<AtomicU64>,
}

impl Fleet {
    /// The average latency so far, if any response was seen.
    pub(crate) fn average(&self) -> Option<Duration> {
        match self.nanos.load(Ordering::Relaxed) {
            0 => None,
            n => Some(Duration::from_nanos(n)),
        }
    }

    fn record(&self, sample: Duration) {
        let sample = u64::try_from(sample.as_nanos()).unwrap_or(u64::MAX).max(1);
        // Concurrent updates may overwrite each other: an average, not a
        // count, so a lost sample does not matter.
        let old = self.nanos.load(Ordering::Relaxed);
        let new = if old == 0 {
            sample
        } else {
            (old as f64 * (1.0 - WEIGHT) + sample as f64 * WEIGHT) as u64
        };
        self.nanos.store(new.max(1), Ordering::Relaxed);
    }
}

/// Times an endpoint's responses into its [`Fleet`].
#[derive(Debug, Clone)]
pub struct Timed<S> {
    inner: S,
    fleet: Fleet,
}

impl<S> Timed<S> {
    pub(crate) fn new(inner: S, fleet: Fleet) -> Self {
        Timed { inner, fleet }
    }
}

impl<S: Service<R>, R> Service<R> for Timed<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = TimedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        TimedFuture {
            inner: self.inner.call(request),
            start: Instant::now(),
            fleet: self.fleet.clone(),
        }
    }
}

pin_project! {
    /// The response future of [`Timed`].
    pub struct TimedFuture<F> {
        #[pin]
        inner: F,
        start: Instant,
        fleet: Fleet,
    }
}

impl<F: Future<Output = Result<T, E>>, T, E> Future for TimedFuture<F> {
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        if result.is_ok() {
            this.fleet.record(this.start.elapsed());
        }
        Poll::Ready(result)
    }
}
