//! [`RetryPolicy`]: when and how often a call is sent again.

use std::sync::Arc;
use std::time::Duration;

use tower::retry::budget::TpsBudget;

use super::{Backoff, Idempotency};

/// The most attempts (the first one included) a policy may allow.
pub const MAX_ATTEMPTS: u32 = 10;

/// The largest request body a policy may buffer for replay.
pub const MAX_REPLAY_BYTES: usize = 16 * 1024 * 1024;

/// When a call is retried, how long it waits, and how many retries the
/// whole client may send.
///
/// Defaults: 3 attempts; [`Backoff::default`] (25 ms doubling to 1 s,
/// full jitter); a budget of retries worth 20 % of calls plus 10 per
/// second over a 10 s window (tower's [`TpsBudget::default`]); no
/// per-attempt timeout; request bodies up to 64 KiB are replayed;
/// [`Idempotency::new`] (HTTP `GET`, `HEAD`, `OPTIONS`, `PUT`, `DELETE`).
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub(crate) max_attempts: u32,
    pub(crate) backoff: Backoff,
    pub(crate) budget: Arc<TpsBudget>,
    pub(crate) per_attempt_timeout: Option<Duration>,
    pub(crate) max_replay_bytes: usize,
    pub(crate) idempotency: Arc<Idempotency>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::new()
    }
}

impl RetryPolicy {
    /// The default policy.
    pub fn new() -> Self {
        RetryPolicy {
            max_attempts: 3,
            backoff: Backoff::default(),
            budget: Arc::new(TpsBudget::default()),
            per_attempt_timeout: None,
            max_replay_bytes: 64 * 1024,
            idempotency: Arc::new(Idempotency::new()),
        }
    }

    /// At most `attempts` sends of one call, the first included (1 turns
    /// retries off).
    ///
    /// # Panics
    /// When `attempts` is 0 or above [`MAX_ATTEMPTS`].
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        assert!(
            (1..=MAX_ATTEMPTS).contains(&attempts),
            "max_attempts is {attempts}; it must be between 1 and {MAX_ATTEMPTS}"
        );
        self.max_attempts = attempts;
        self
    }

    /// The wait before each retry.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The retry budget, shared by every service made with this policy:
    /// each call deposits into it, each retry withdraws, and a retry the
    /// budget cannot pay for is not sent. `TpsBudget::new(ttl,
    /// min_per_sec, retry_percent)` allows `retry_percent` retries per
    /// call, plus `min_per_sec` retries per second, over a window of `ttl`.
    pub fn budget(mut self, budget: TpsBudget) -> Self {
        self.budget = Arc::new(budget);
        self
    }

    /// Gives each attempt at most `timeout` (never more than the call's
    /// deadline leaves). An attempt that runs out of this time is retried
    /// when the call's deadline still leaves, after the backoff, a whole
    /// `timeout` for another attempt.
    pub fn per_attempt_timeout(mut self, timeout: Duration) -> Self {
        self.per_attempt_timeout = Some(timeout);
        self
    }

    /// Buffers request bodies up to `bytes` to send them again; a larger
    /// body is sent once, never retried.
    ///
    /// # Panics
    /// Above [`MAX_REPLAY_BYTES`].
    pub fn max_replay_bytes(mut self, bytes: usize) -> Self {
        assert!(
            bytes <= MAX_REPLAY_BYTES,
            "max_replay_bytes is {bytes}; at most {MAX_REPLAY_BYTES} is allowed"
        );
        self.max_replay_bytes = bytes;
        self
    }

    /// Which calls may be retried.
    pub fn idempotency(mut self, idempotency: Idempotency) -> Self {
        self.idempotency = Arc::new(idempotency);
        self
    }

    /// The configured attempts, the first included.
    pub fn attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The configured backoff.
    pub fn backoff_config(&self) -> Backoff {
        self.backoff
    }

    /// Which calls may be retried.
    pub fn idempotent(&self) -> &Idempotency {
        &self.idempotency
    }
}
