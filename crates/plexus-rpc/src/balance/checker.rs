//! The background task that checks every endpoint's health.

use std::fmt::Debug;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::{Health, HealthCheck};

/// How the checks run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schedule {
    pub(crate) interval: Duration,
    pub(crate) timeout: Duration,
    pub(crate) unhealthy_after: u32,
    pub(crate) healthy_after: u32,
}

/// Stops the health checks when the balancer is dropped.
#[derive(Debug)]
pub(crate) struct Checker(JoinHandle<()>);

impl Drop for Checker {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Checker {
    /// Starts checking every endpoint (all at once) every interval, the
    /// first round at once.
    pub(crate) fn spawn<K>(health: Health<K>, checks: Vec<HealthCheck>, schedule: Schedule) -> Self
    where
        K: PartialEq + Clone + Debug + Send + Sync + 'static,
    {
        Checker(tokio::spawn(run(health, checks, schedule)))
    }
}

async fn run<K: PartialEq + Clone + Debug>(
    health: Health<K>,
    checks: Vec<HealthCheck>,
    schedule: Schedule,
) {
    let mut successes = vec![0u32; checks.len()];
    let mut failures = vec![0u32; checks.len()];
    let mut ticker = tokio::time::interval(schedule.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let rounds = checks
            .iter()
            .map(|check| tokio::time::timeout(schedule.timeout, check.run()));
        let results = futures::future::join_all(rounds).await;
        for (i, result) in results.into_iter().enumerate() {
            let result = result.unwrap_or_else(|_| {
                Err(format!(
                    "health check gave no answer within {:?}",
                    schedule.timeout
                ))
            });
            let healthy = health.is_healthy_at(i);
            match result {
                Ok(()) => {
                    failures[i] = 0;
                    successes[i] = successes[i].saturating_add(1);
                    if !healthy && successes[i] >= schedule.healthy_after {
                        health.set(i, true, None);
                        tracing::info!(endpoint = ?health.key(i), "endpoint healthy again: back in the balancer");
                    }
                }
                Err(error) => {
                    successes[i] = 0;
                    failures[i] = failures[i].saturating_add(1);
                    if (!healthy || failures[i] >= schedule.unhealthy_after)
                        && health.set(i, false, Some(error.clone()))
                    {
                        tracing::warn!(endpoint = ?health.key(i), %error, "endpoint unhealthy: ejected from the balancer");
                    }
                }
            }
        }
    }
}
