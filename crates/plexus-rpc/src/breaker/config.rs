//! [`BreakerConfig`]: when a circuit opens, how long it rests, how it
//! tries again.

use std::time::Duration;

/// The largest count-based window.
pub const MAX_WINDOW_CALLS: u32 = 10_000;

/// The most probe calls a half-open circuit may let through at once.
pub const MAX_PROBES: u32 = 1_000;

/// Over which recent calls the failure rate is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The last `n` calls.
    Count(u32),
    /// The calls of the last `duration` (counted in ten slices, so a call
    /// leaves the window up to a tenth of `duration` late).
    Time(Duration),
}

/// Settings of a circuit breaker.
///
/// Defaults: the circuit opens when at least 50 % of the last 20 calls
/// failed and there were at least 10 of them; it stays open 5 s, then
/// lets 3 probe calls through; it closes when all 3 succeed and opens
/// again as soon as one fails.
#[derive(Debug, Clone)]
pub struct BreakerConfig {
    pub(crate) name: String,
    pub(crate) failure_rate: f64,
    pub(crate) window: Window,
    pub(crate) minimum_calls: u32,
    pub(crate) open_for: Duration,
    pub(crate) probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig::new()
    }
}

impl BreakerConfig {
    /// The defaults.
    pub fn new() -> Self {
        BreakerConfig {
            name: "the callee".to_owned(),
            failure_rate: 0.5,
            window: Window::Count(20),
            minimum_calls: 10,
            open_for: Duration::from_secs(5),
            probes: 3,
        }
    }

    /// The name of what the circuit protects (an endpoint, a service), used
    /// in rejection messages and logs.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Opens the circuit when at least this share of the window's calls
    /// failed (a number in `(0, 1]`).
    ///
    /// # Panics
    /// Outside `(0, 1]`.
    pub fn failure_rate(mut self, rate: f64) -> Self {
        assert!(
            rate > 0.0 && rate <= 1.0,
            "failure_rate is {rate}; it must be in (0, 1]"
        );
        self.failure_rate = rate;
        self
    }

    /// The window the failure rate is measured over.
    ///
    /// # Panics
    /// For a count of 0 or above [`MAX_WINDOW_CALLS`], or a time window
    /// under 10 ms.
    pub fn window(mut self, window: Window) -> Self {
        match window {
            Window::Count(n) => assert!(
                (1..=MAX_WINDOW_CALLS).contains(&n),
                "a count window of {n} calls; it must hold 1 to {MAX_WINDOW_CALLS}"
            ),
            Window::Time(d) => assert!(
                d >= Duration::from_millis(10),
                "a time window of {d:?}; it must be at least 10 ms"
            ),
        }
        self.window = window;
        self
    }

    /// The circuit never opens on fewer calls than this in the window.
    pub fn minimum_calls(mut self, calls: u32) -> Self {
        self.minimum_calls = calls.max(1);
        self
    }

    /// How long an open circuit rejects calls before probing (the
    /// cool-down).
    pub fn open_for(mut self, cool_down: Duration) -> Self {
        self.open_for = cool_down;
        self
    }

    /// How many probe calls a half-open circuit lets through; all must
    /// succeed to close it.
    ///
    /// # Panics
    /// For 0 or above [`MAX_PROBES`].
    pub fn probes(mut self, probes: u32) -> Self {
        assert!(
            (1..=MAX_PROBES).contains(&probes),
            "probes is {probes}; it must be between 1 and {MAX_PROBES}"
        );
        self.probes = probes;
        self
    }
}
