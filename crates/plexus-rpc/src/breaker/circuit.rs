//! [`Circuit`]: the state machine every clone of a breaker shares.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use super::classify::Outcome;
use super::window::Outcomes;
use super::{BreakerConfig, CircuitOpen};

/// The state of a circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    /// Calls go through; their outcomes are measured.
    Closed,
    /// Calls are rejected until `until`.
    Open {
        /// When the cool-down ends.
        until: Instant,
    },
    /// The cool-down is over: up to the configured number of probe calls
    /// go through; the others are rejected.
    HalfOpen,
}

/// A snapshot of a circuit, for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitStats {
    /// The state now.
    pub state: CircuitState,
    /// Calls in the window (while closed).
    pub calls: u32,
    /// Failed calls in the window (while closed).
    pub failures: u32,
    /// How many times the circuit has opened.
    pub opened: u64,
    /// Calls rejected without being sent.
    pub rejected: u64,
}

/// A circuit: closed, open or half-open, shared by all the services made
/// by one [`CircuitBreakerLayer`](super::CircuitBreakerLayer). Clones
/// share the circuit.
#[derive(Debug, Clone)]
pub struct Circuit {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    config: BreakerConfig,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: State,
    /// Changes on every transition, so that outcomes of calls let through
    /// in an earlier state are not counted in the new one.
    generation: u64,
    outcomes: Outcomes,
    opened: u64,
    rejected: u64,
    /// Why the circuit last opened.
    tripped: Trip,
}

#[derive(Debug, Clone, Copy)]
enum Trip {
    /// `failures` of the window's `calls` failed.
    Window { failures: u32, calls: u32 },
    /// A half-open probe failed.
    Probe,
}

impl Trip {
    fn describe(self, threshold: f64) -> String {
        match self {
            Trip::Window { failures, calls } => format!(
                "{failures} of the last {calls} calls failed (threshold {:.0}%)",
                threshold * 100.0
            ),
            Trip::Probe => "a probe call failed".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum State {
    Closed,
    Open { until: Instant },
    HalfOpen { started: u32, succeeded: u32 },
}

/// Leave to send one call; it records the call's outcome, and records
/// nothing (releasing a probe slot) when dropped unused.
#[derive(Debug)]
pub(crate) struct Permit {
    circuit: Circuit,
    generation: u64,
    recorded: bool,
}

impl Permit {
    pub(crate) fn record(mut self, outcome: Outcome) {
        self.recorded = true;
        self.circuit.record(self.generation, outcome);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.recorded {
            self.circuit.record(self.generation, Outcome::Ignored);
        }
    }
}

impl Circuit {
    /// A closed circuit with `config`.
    pub fn new(config: BreakerConfig) -> Self {
        Circuit {
            shared: Arc::new(Shared {
                inner: Mutex::new(Inner {
                    state: State::Closed,
                    generation: 0,
                    outcomes: Outcomes::new(config.window),
                    opened: 0,
                    rejected: 0,
                    tripped: Trip::Probe,
                }),
                config,
            }),
        }
    }

    /// The state now (an open circuit whose cool-down is over reports
    /// half-open).
    pub fn state(&self) -> CircuitState {
        self.stats().state
    }

    /// The state and counters now.
    pub fn stats(&self) -> CircuitStats {
        let mut inner = self.lock();
        self.cool_down_over(&mut inner);
        let (calls, failures) = inner.outcomes.counts();
        CircuitStats {
            state: match inner.state {
                State::Closed => CircuitState::Closed,
                State::Open { until } => CircuitState::Open { until },
                State::HalfOpen { .. } => CircuitState::HalfOpen,
            },
            calls,
            failures,
            opened: inner.opened,
            rejected: inner.rejected,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.shared.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cool_down_over(&self, inner: &mut Inner) {
        if let State::Open { until } = inner.state
            && Instant::now() >= until
        {
            inner.state = State::HalfOpen {
                started: 0,
                succeeded: 0,
            };
            inner.generation += 1;
            tracing::info!(circuit = %self.shared.config.name, "circuit half-open: probing");
        }
    }

    /// Leave to send a call, or the rejection to answer it with.
    pub(crate) fn try_acquire(&self) -> Result<Permit, CircuitOpen> {
        let config = &self.shared.config;
        let mut inner = self.lock();
        self.cool_down_over(&mut inner);
        match &mut inner.state {
            State::Closed => {}
            State::HalfOpen { started, .. } if *started < config.probes => *started += 1,
            State::HalfOpen { .. } => {
                inner.rejected += 1;
                return Err(CircuitOpen::new(
                    format!(
                        "circuit half-open for {}: its {} probe call(s) are in flight; \
                         other calls are rejected until they succeed",
                        config.name, config.probes
                    ),
                    None,
                ));
            }
            State::Open { until } => {
                let until = *until;
                let why = inner.tripped.describe(config.failure_rate);
                inner.rejected += 1;
                return Err(CircuitOpen::new(
                    format!(
                        "circuit open for {}: {why}; calls are rejected until the cool-down \
                         ends in {}, then {} probe call(s) are let through",
                        config.name,
                        seconds(until.saturating_duration_since(Instant::now())),
                        config.probes
                    ),
                    Some(until),
                ));
            }
        }
        Ok(Permit {
            circuit: self.clone(),
            generation: inner.generation,
            recorded: false,
        })
    }

    fn record(&self, generation: u64, outcome: Outcome) {
        let config = &self.shared.config;
        let mut inner = self.lock();
        if generation != inner.generation {
            return;
        }
        match (&mut inner.state, outcome) {
            (State::Closed, Outcome::Ignored) => {}
            (State::Closed, outcome) => {
                inner.outcomes.record(outcome == Outcome::Failure);
                let (calls, failures) = inner.outcomes.counts();
                if calls >= config.minimum_calls
                    && f64::from(failures) >= config.failure_rate * f64::from(calls)
                {
                    inner.tripped = Trip::Window { failures, calls };
                    self.open(&mut inner);
                }
            }
            (State::HalfOpen { started, .. }, Outcome::Ignored) => {
                *started = started.saturating_sub(1);
            }
            (State::HalfOpen { succeeded, .. }, Outcome::Success) => {
                *succeeded += 1;
                if *succeeded >= config.probes {
                    inner.state = State::Closed;
                    inner.generation += 1;
                    inner.outcomes.clear();
                    tracing::info!(circuit = %config.name, "circuit closed: the probes succeeded");
                }
            }
            (State::HalfOpen { .. }, Outcome::Failure) => {
                inner.tripped = Trip::Probe;
                self.open(&mut inner);
            }
            (State::Open { .. }, _) => {}
        }
    }

    fn open(&self, inner: &mut Inner) {
        let config = &self.shared.config;
        inner.state = State::Open {
            until: Instant::now() + config.open_for,
        };
        inner.generation += 1;
        inner.opened += 1;
        inner.outcomes.clear();
        tracing::warn!(
            circuit = %config.name,
            why = %inner.tripped.describe(config.failure_rate),
            cool_down = ?config.open_for,
            "circuit opened"
        );
    }
}

fn seconds(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}
