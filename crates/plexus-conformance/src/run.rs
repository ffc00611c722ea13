//! [`run`]: one scenario, repeated concurrently in stress mode.

use std::future::Future;

use futures::future::join_all;
use plexus_core::bus::BoxFuture;

use crate::{Backend, Outcome};

/// The environment variable that turns on stress mode: `PLEXUS_STRESS=N`
/// runs each scenario N times at once.
pub const STRESS_VAR: &str = "PLEXUS_STRESS";

/// A scenario, as [`run`] takes it.
pub type Scenario = for<'a> fn(&'a Backend) -> BoxFuture<'a, Outcome>;

/// How many copies of each scenario run at once: `PLEXUS_STRESS`, or 1.
///
/// # Panics
///
/// When `PLEXUS_STRESS` is set to something other than a whole number
/// from 1 to 1,000.
pub fn stress_copies() -> usize {
    match std::env::var(STRESS_VAR) {
        Err(_) => 1,
        Ok(value) => match value.trim().parse::<usize>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => panic!(
                "{STRESS_VAR}={value:?}: expected a whole number from 1 to 1000 (how many copies of each scenario run at once)"
            ),
        },
    }
}

/// Runs `scenario` against a backend from `setup`, or, in stress mode,
/// [`stress_copies`] copies at once, each against its own `setup()`
/// (each copy uses fresh topics anyway; copies of a
/// [one-handle](Backend::one_handle) backend must not share it, since a
/// scenario that closes its subscriber would close the others' too).
/// Panics when a copy fails; returns the first copy's outcome.
pub async fn run<F>(name: &str, setup: impl Fn() -> F, scenario: Scenario) -> Outcome
where
    F: Future<Output = Backend>,
{
    let copies = stress_copies();
    let backends = join_all((0..copies).map(|_| setup())).await;
    let outcomes = join_all(backends.iter().map(scenario)).await;
    if copies > 1 {
        let passed = outcomes.iter().filter(|o| **o == Outcome::Passed).count();
        println!(
            "{name}: stress: {copies} concurrent copies, {passed} passed, {} skipped",
            copies - passed
        );
    }
    outcomes.into_iter().next().expect("at least one copy runs")
}
