//! [`Backoff`]: exponential backoff with full jitter.

use std::time::Duration;

use rand::Rng;

/// How long to wait before each retry: exponential backoff with *full
/// jitter*.
///
/// Before retry `n` (1 for the first retry) the wait is drawn uniformly
/// from `[0, cap(n)]`, where `cap(n) = min(max, base × 2^(n-1))`. Drawing
/// from the whole range (rather than adding a little noise to a fixed
/// delay) spreads the retries of many clients that failed together, so
/// they do not come back in waves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    max: Duration,
}

impl Backoff {
    /// Waits growing from `base` (the cap before the first retry) and
    /// doubling up to `max`. A `max` below `base` is raised to `base`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Backoff {
            base,
            max: max.max(base),
        }
    }

    /// The cap before the first retry.
    pub fn base(&self) -> Duration {
        self.base
    }

    /// The largest wait.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The longest wait before retry `n` (1 for the first retry).
    pub fn cap(&self, retry: u32) -> Duration {
        let doublings = retry.saturating_sub(1).min(63);
        let factor = 1u64 << doublings;
        let nanos = u64::try_from(self.base.as_nanos())
            .unwrap_or(u64::MAX)
            .saturating_mul(factor);
        Duration::from_nanos(nanos).min(self.max)
    }

    /// A wait before retry `n` drawn from `[0, cap(n)]` with `rng`.
    pub fn delay_with(&self, retry: u32, rng: &mut impl Rng) -> Duration {
        let cap = u64::try_from(self.cap(retry).as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rng.random_range(0..=cap))
    }

    /// A wait before retry `n` drawn from `[0, cap(n)]`.
    pub fn delay(&self, retry: u32) -> Duration {
        self.delay_with(retry, &mut rand::rng())
    }
}

impl Default for Backoff {
    /// 25 ms doubling up to 1 s.
    fn default() -> Self {
        Backoff::new(Duration::from_millis(25), Duration::from_secs(1))
    }
}
