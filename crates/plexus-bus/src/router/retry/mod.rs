//! [`RetryLayer`]: retries a failed call in process, with exponential
//! backoff and full jitter, before the message goes back to the broker.

use std::time::Duration;

use tower::BoxError;
use tower::retry::{Policy, Retry};

use super::{Expired, Incoming, Outgoing};

/// Exponential backoff with full jitter: the n-th wait is a random time
/// between zero and `min(max, initial × 2ⁿ)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The cap of the first wait.
    pub initial: Duration,
    /// The cap no wait exceeds.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_secs(5),
        }
    }
}

impl Backoff {
    /// The cap of wait number `retry` (0 for the first).
    pub fn cap(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// A random wait for retry number `retry`.
    pub fn wait(&self, retry: u32) -> Duration {
        let cap = self.cap(retry);
        if cap.is_zero() {
            return cap;
        }
        Duration::from_nanos(rand::random_range(
            0..=cap.as_nanos().min(u64::MAX as u128) as u64,
        ))
    }
}

/// Retries a failed handler call up to `max_retries` times, waiting
/// [`Backoff::wait`] between tries. An [`Expired`] message is not retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryLayer {
    max_retries: u32,
    backoff: Backoff,
}

impl RetryLayer {
    /// At most `max_retries` retries after the first try.
    pub fn new(max_retries: u32, backoff: Backoff) -> Self {
        RetryLayer {
            max_retries,
            backoff,
        }
    }
}

impl<S> tower::Layer<S> for RetryLayer {
    type Service = Retry<RetryPolicy, S>;

    fn layer(&self, inner: S) -> Self::Service {
        Retry::new(
            RetryPolicy {
                left: self.max_retries,
                done: 0,
                backoff: self.backoff,
            },
            inner,
        )
    }
}

/// The policy of [`RetryLayer`], one per call.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    left: u32,
    done: u32,
    backoff: Backoff,
}

impl Policy<Incoming, Vec<Outgoing>, BoxError> for RetryPolicy {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        _request: &mut Incoming,
        result: &mut Result<Vec<Outgoing>, BoxError>,
    ) -> Option<Self::Future> {
        let error = result.as_ref().err()?;
        if self.left == 0 || error.is::<Expired>() {
            return None;
        }
        self.left -= 1;
        let wait = self.backoff.wait(self.done);
        self.done += 1;
        Some(tokio::time::sleep(wait))
    }

    fn clone_request(&mut self, request: &Incoming) -> Option<Incoming> {
        Some(request.clone())
    }
}
