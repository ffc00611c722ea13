//! [`Outcome`]: how a scenario ended, and the features a scenario needs.

use std::fmt;

use crate::Backend;

/// How a scenario ended. A failure is a panic naming the backend, the
/// scenario, what was expected and what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "an outcome says whether the scenario ran at all"]
pub enum Outcome {
    /// Every check passed.
    Passed,
    /// The backend lacks what the scenario needs (the reason was printed).
    Skipped(String),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Passed => f.write_str("passed"),
            Outcome::Skipped(reason) => write!(f, "skipped: {reason}"),
        }
    }
}

/// What a scenario needs of a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    ConsumerGroups,
    PerKeyOrder,
    Replay,
    Persistent,
    Reopen,
    RestartBroker,
    ForeignClient,
    ExclusiveGroups,
}

impl Need {
    fn met(self, backend: &Backend) -> Result<(), &'static str> {
        let features = backend.features();
        let (met, reason) = match self {
            Need::ConsumerGroups => (
                features.consumer_groups,
                "the backend does not offer consumer groups (Features::consumer_groups)",
            ),
            Need::PerKeyOrder => (
                features.per_key_order,
                "the backend does not keep per-key order (Features::per_key_order)",
            ),
            Need::Replay => (
                features.replay,
                "the backend cannot start a group at the earliest message (Features::replay)",
            ),
            Need::Persistent => (
                features.persistent,
                "the backend is not persistent (Features::persistent)",
            ),
            Need::Reopen => (
                backend.can_reopen(),
                "no reopen hook was given (Backend::reopen)",
            ),
            Need::RestartBroker => (
                backend.can_restart_broker(),
                "no broker restart hook was given (Backend::restart_broker)",
            ),
            Need::ForeignClient => (
                backend.foreign().is_some(),
                "no client of this backend in another language was given (Backend::foreign_client)",
            ),
            Need::ExclusiveGroups => (
                features.exclusive_groups,
                "the backend does not offer exclusive groups (Features::exclusive_groups)",
            ),
        };
        if met { Ok(()) } else { Err(reason) }
    }
}

/// `None` when the backend can run `scenario`; otherwise the skip, with
/// its reason printed (or a panic for an unavailable backend under
/// `CI=true`).
pub(crate) fn gate(backend: &Backend, scenario: &str, needs: &[Need]) -> Option<Outcome> {
    let reason = if let Some(reason) = backend.unavailable_reason() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "[{}] {scenario}: the backend is unavailable and CI=true: {reason}",
                backend.name()
            );
        }
        reason.to_owned()
    } else {
        match needs.iter().try_for_each(|need| need.met(backend)) {
            Ok(()) => return None,
            Err(reason) => reason.to_owned(),
        }
    };
    println!("[{}] {scenario}: skipped: {reason}", backend.name());
    Some(Outcome::Skipped(reason))
}
