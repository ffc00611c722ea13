//! The conformance suite every plexus bus backend runs.
//!
//! One public async fn per scenario in [`scenarios`], each taking the
//! [`Backend`] under test and checking one part of the bus contract
//! ([`plexus_core::bus`]) on fresh random topics and groups. A scenario
//! the backend cannot run (it lacks a feature, or its service is
//! unreachable) prints one line with the reason and returns
//! [`Outcome::Skipped`]; a failure is a panic that names the backend, the
//! scenario, what was expected and what happened. Every wait is bounded
//! ([`Backend::patience`]).
//!
//! A backend's `tests/conformance.rs` supplies the backend and gets one
//! `#[tokio::test]` per scenario from [`conformance_tests!`] (its
//! dev-dependencies need `tokio` with the `macros` and `rt-multi-thread`
//! features):
//!
//! ```no_run
//! use plexus_bus::memory::MemoryBus;
//! use plexus_conformance::Backend;
//!
//! async fn backend() -> Backend {
//!     Backend::one_handle("memory bus", MemoryBus::new())
//! }
//!
//! plexus_conformance::conformance_tests!(backend);
//! ```
//!
//! The `cloudevents_interop` scenario needs a [`ForeignClient`]
//! ([`Backend::foreign_client`]): [`PythonClient`] runs a backend's
//! Python script (`tests/python/<bus>_interop.py`) as one.
//!
//! Stress mode: `PLEXUS_STRESS=N cargo test -p <backend> --test
//! conformance` runs N copies of each scenario at once ([`run`]).

mod backend;
mod crash;
mod foreign;
mod outcome;
pub mod port;
mod python;
mod run;
pub mod scenarios;
mod support;

pub use backend::Backend;
pub use crash::{TOPIC_VAR as CRASH_TOPIC_VAR, crash_child};
pub use foreign::{ForeignClient, Reading};
pub use outcome::Outcome;
pub use python::PythonClient;
pub use run::{STRESS_VAR, Scenario, run, stress_copies};

/// Generates one `#[tokio::test]` (multi-threaded runtime) per scenario of
/// the suite, each running [`run`] with `$setup`, an async fn (or closure
/// returning a future) that makes the [`Backend`]; it is called once per
/// copy in stress mode.
///
/// `conformance_tests!(setup; each = MACRO)` passes every test through
/// `MACRO!(scenario, test item)`, a `macro_rules!` of the caller's that
/// returns the item, with attributes added for the scenarios it names
/// (say `#[ignore = "why"]` where the backend's server has a known fault).
#[macro_export]
macro_rules! conformance_tests {
    ($setup:expr) => {
        $crate::conformance_tests!($setup; each = $crate::__as_is);
    };
    ($setup:expr; each = $each:path) => {
        $crate::__conformance_tests!(
            $setup;
            $each;
            publish_subscribe,
            concurrent_subscribe,
            resend_on_error,
            no_ack,
            continue_after_subscribe_close,
            concurrent_close,
            continue_after_errors,
            publish_subscribe_in_order,
            parallel_across_keys,
            publisher_close,
            topic_isolation,
            consumer_groups,
            exclusive_groups,
            new_subscriber_receives_old_messages,
            reconnect,
            durable_across_restart,
            poison_to_dead_letter,
            deadline_propagates,
            cloudevents_interop,
            bad_input,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    ($setup:expr; $each:path; $($scenario:ident),* $(,)?) => {
        $(
            $each!(
                $scenario,
                #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let _outcome = $crate::run(
                        ::std::stringify!($scenario),
                        $setup,
                        |backend| ::std::boxed::Box::pin($crate::scenarios::$scenario(backend)),
                    )
                    .await;
                }
            );
        )*
    };
}

/// The test item unchanged (`conformance_tests!` without `each`).
#[doc(hidden)]
#[macro_export]
macro_rules! __as_is {
    ($scenario:ident, $($item:tt)*) => {
        $($item)*
    };
}
