//! [`BalanceBuilder`]: the endpoints of a balancer and how they are
//! checked and bounded.

use std::fmt::Debug;
use std::hash::Hash;
use std::time::Duration;

use http::Request;
use tower_service::Service;

use super::checker::{Checker, Schedule};
use super::discover::{HealthDiscover, Wrap};
use super::{Balance, BalanceError, Health, HealthCheck};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The most endpoints one balancer may hold.
pub const MAX_ENDPOINTS: usize = 1024;

/// Builds a [`Balance`].
///
/// Defaults: at most 64 endpoints; health checks every 5 s, each given
/// 1 s; one failed check ejects an endpoint and one passed check brings
/// it back; at most 100 calls in flight per endpoint; PeakEwma latency
/// starting at 30 ms before any answer, decaying over 10 s.
#[derive(Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct BalanceBuilder<K, S> {
    keys: Vec<K>,
    services: Vec<S>,
    checks: Vec<HealthCheck>,
    max_endpoints: usize,
    schedule: Schedule,
    wrap: Wrap,
}

impl<K, S> Default for BalanceBuilder<K, S> {
    fn default() -> Self {
        BalanceBuilder::new()
    }
}

impl<K, S> BalanceBuilder<K, S> {
    /// A builder with the defaults and no endpoint.
    pub fn new() -> Self {
        BalanceBuilder {
            keys: Vec::new(),
            services: Vec::new(),
            checks: Vec::new(),
            max_endpoints: 64,
            schedule: Schedule {
                interval: Duration::from_secs(5),
                timeout: Duration::from_secs(1),
                unhealthy_after: 1,
                healthy_after: 1,
            },
            wrap: Wrap {
                max_in_flight: 100,
                default_rtt: Duration::from_millis(30),
                decay: Duration::from_secs(10),
            },
        }
    }

    /// Adds the endpoint `key` served by `service`, checked by `check`.
    pub fn endpoint(mut self, key: K, service: S, check: HealthCheck) -> Self {
        self.keys.push(key);
        self.services.push(service);
        self.checks.push(check);
        self
    }

    /// At most `max` endpoints (up to [`MAX_ENDPOINTS`]).
    pub fn max_endpoints(mut self, max: usize) -> Self {
        self.max_endpoints = max.clamp(1, MAX_ENDPOINTS);
        self
    }

    /// Checks every endpoint every `interval` (at least 10 ms).
    pub fn check_interval(mut self, interval: Duration) -> Self {
        self.schedule.interval = interval.max(Duration::from_millis(10));
        self
    }

    /// A check that has not answered within `timeout` failed.
    pub fn check_timeout(mut self, timeout: Duration) -> Self {
        self.schedule.timeout = timeout;
        self
    }

    /// Ejects an endpoint after `failures` failed checks in a row.
    pub fn unhealthy_after(mut self, failures: u32) -> Self {
        self.schedule.unhealthy_after = failures.max(1);
        self
    }

    /// Brings an ejected endpoint back after `successes` passed checks in
    /// a row.
    pub fn healthy_after(mut self, successes: u32) -> Self {
        self.schedule.healthy_after = successes.max(1);
        self
    }

    /// At most `max` calls in flight per endpoint; an endpoint at its
    /// bound is not chosen, and when all are, callers wait for a slot.
    pub fn max_in_flight(mut self, max: usize) -> Self {
        self.wrap.max_in_flight = max.max(1);
        self
    }

    /// PeakEwma settings: the latency assumed for an endpoint before any
    /// answer was measured (later ones start at the fleet's average), and
    /// how fast a measured latency decays back.
    pub fn peak_ewma(mut self, default_rtt: Duration, decay: Duration) -> Self {
        self.wrap.default_rtt = default_rtt.max(Duration::from_nanos(1));
        self.wrap.decay = decay.max(Duration::from_millis(1));
        self
    }

    /// Starts the health checks (on the current tokio runtime) and returns
    /// the balancer. Every endpoint is taken as healthy until its first
    /// check, which runs at once.
    pub fn build<B>(self) -> Result<Balance<K, S, B>, BalanceError>
    where
        K: Hash + Eq + Clone + Debug + Send + Sync + 'static,
        S: Service<Request<B>> + Clone,
        S::Error: Into<BoxError>,
    {
        if self.keys.is_empty() {
            return Err(BalanceError::NoEndpoints);
        }
        if self.keys.len() > self.max_endpoints {
            return Err(BalanceError::TooManyEndpoints {
                count: self.keys.len(),
                max: self.max_endpoints,
            });
        }
        for (i, key) in self.keys.iter().enumerate() {
            if self.keys[..i].contains(key) {
                return Err(BalanceError::DuplicateKey(format!("{key:?}")));
            }
        }
        let health = Health::new(self.keys);
        let checker = Checker::spawn(health.clone(), self.checks, self.schedule);
        let discover = HealthDiscover::new(self.services, health.clone(), self.wrap);
        Ok(Balance::from_parts(discover, health, checker))
    }
}
