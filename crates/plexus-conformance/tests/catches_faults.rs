//! The suite catches what it claims to: each scenario fails, for the
//! right reason, against a backend with a matching deliberate fault, and
//! passes against the same wrapper without one.

mod faults;

use std::panic::AssertUnwindSafe;

use faults::{Fault, backend, broker_backend};
use futures::FutureExt;
use plexus_conformance::{Outcome, Scenario, scenarios};

/// Runs `scenario` against a backend with `fault` and returns the
/// failure's message; panics if the scenario passed or skipped.
async fn failure(fault: Fault, persistent: bool, scenario: Scenario) -> String {
    let backend = backend(fault, persistent);
    match AssertUnwindSafe(scenario(&backend)).catch_unwind().await {
        Ok(outcome) => {
            panic!("the scenario ended {outcome} against a backend with fault {fault:?}")
        }
        Err(panic) => panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default(),
    }
}

/// Asserts that `scenario` fails against `fault` with a message holding
/// `reason`.
async fn catches(fault: Fault, scenario: Scenario, reason: &str) {
    let message = failure(fault, false, scenario).await;
    assert!(
        message.contains(reason),
        "against fault {fault:?} the scenario failed, but not for `{reason}`: {message}"
    );
}

macro_rules! scenario {
    ($name:ident) => {
        |backend| Box::pin(scenarios::$name(backend))
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wrapper_without_a_fault_passes_every_scenario() {
    let all: [(&str, Scenario); 17] = [
        ("publish_subscribe", scenario!(publish_subscribe)),
        ("concurrent_subscribe", scenario!(concurrent_subscribe)),
        ("resend_on_error", scenario!(resend_on_error)),
        ("no_ack", scenario!(no_ack)),
        (
            "continue_after_subscribe_close",
            scenario!(continue_after_subscribe_close),
        ),
        ("concurrent_close", scenario!(concurrent_close)),
        ("continue_after_errors", scenario!(continue_after_errors)),
        (
            "publish_subscribe_in_order",
            scenario!(publish_subscribe_in_order),
        ),
        ("parallel_across_keys", scenario!(parallel_across_keys)),
        ("publisher_close", scenario!(publisher_close)),
        ("topic_isolation", scenario!(topic_isolation)),
        ("consumer_groups", scenario!(consumer_groups)),
        (
            "new_subscriber_receives_old_messages",
            scenario!(new_subscriber_receives_old_messages),
        ),
        ("durable_across_restart", scenario!(durable_across_restart)),
        ("poison_to_dead_letter", scenario!(poison_to_dead_letter)),
        ("deadline_propagates", scenario!(deadline_propagates)),
        ("bad_input", scenario!(bad_input)),
    ];
    for (name, scenario) in all {
        let backend = backend(Fault::None, true);
        assert_eq!(scenario(&backend).await, Outcome::Passed, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_message_is_caught() {
    catches(
        Fault::LosesMessages,
        scenario!(publish_subscribe),
        "messages on",
    )
    .await;
    catches(
        Fault::LosesMessages,
        scenario!(concurrent_subscribe),
        "missing",
    )
    .await;
    catches(Fault::LosesMessages, scenario!(publisher_close), "missing").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_header_is_caught() {
    catches(
        Fault::ChangesHeaders,
        scenario!(publish_subscribe),
        "headers was published as",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_attempt_count_is_caught() {
    catches(
        Fault::AttemptAlwaysOne,
        scenario!(resend_on_error),
        "but says attempt 1",
    )
    .await;
    catches(
        Fault::AttemptAlwaysOne,
        scenario!(no_ack),
        "came back as attempt 1",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignored_answers_are_caught() {
    catches(
        Fault::AcksOnReceipt,
        scenario!(resend_on_error),
        "to be acknowledged",
    )
    .await;
    catches(
        Fault::AcksOnReceipt,
        scenario!(no_ack),
        "redelivery 1 of unanswered message 1",
    )
    .await;
    catches(
        Fault::AcksOnReceipt,
        scenario!(continue_after_errors),
        "delivery 0 of 100 to failing member 1",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_key_order_is_caught() {
    catches(
        Fault::ReversesBatches,
        scenario!(publish_subscribe_in_order),
        "while its message 0 was next",
    )
    .await;
    catches(
        Fault::ReversesBatches,
        scenario!(parallel_across_keys),
        "was handled when message",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_that_never_dies_is_caught() {
    // Without true attempt counts the dead-letter layer never gives up
    // (and the poison message's key stays blocked behind it); with acks
    // on receipt the failure is never seen again.
    catches(
        Fault::AttemptAlwaysOne,
        scenario!(poison_to_dead_letter),
        "handled while the poison one fails",
    )
    .await;
    catches(
        Fault::AcksOnReceipt,
        scenario!(poison_to_dead_letter),
        "the poison message in the dead-letter topic",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_message_time_is_caught_by_the_deadline_scenario() {
    catches(
        Fault::RestampsTime,
        scenario!(deadline_propagates),
        "the expired message",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignored_groups_are_caught() {
    catches(
        Fault::IgnoresGroups,
        scenario!(concurrent_subscribe),
        "expected once each",
    )
    .await;
    catches(
        Fault::IgnoresGroups,
        scenario!(consumer_groups),
        "expected once each",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_open_after_close_is_caught() {
    catches(
        Fault::CloseDoesNothing,
        scenario!(publisher_close),
        "expected BusError::Closed, got Ok",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaking_topics_are_caught() {
    catches(
        Fault::MergesTopics,
        scenario!(topic_isolation),
        "received message",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_invalid_topic_is_caught() {
    catches(
        Fault::AcceptsAnyTopic,
        scenario!(bad_input),
        "expected BusError::InvalidTopic, got Ok",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_that_loses_messages_is_caught() {
    let message = failure(
        Fault::ReopenLosesAll,
        true,
        scenario!(durable_across_restart),
    )
    .await;
    assert!(message.contains("after the restart"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_scenarios_run_with_their_hooks_and_skip_without() {
    let plain = backend(Fault::None, false);
    let both: [Scenario; 2] = [scenario!(reconnect), scenario!(cloudevents_interop)];
    for scenario in both {
        assert!(matches!(scenario(&plain).await, Outcome::Skipped(_)));
        let hooked = broker_backend(Fault::None).await;
        assert_eq!(scenario(&hooked).await, Outcome::Passed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losses_across_a_restart_and_a_dropped_attribute_are_caught() {
    let lost = AssertUnwindSafe(scenarios::reconnect(
        &broker_backend(Fault::LosesMessages).await,
    ))
    .catch_unwind()
    .await;
    let lost = lost.expect_err("reconnect passed against a backend losing messages");
    let lost = lost.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(lost.contains("missing"), "{lost}");
    let dropped = AssertUnwindSafe(scenarios::cloudevents_interop(
        &broker_backend(Fault::DropsSubject).await,
    ))
    .catch_unwind()
    .await;
    let dropped = dropped.expect_err("cloudevents_interop passed against a lost subject");
    let dropped = dropped
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(dropped.contains("[\"subject\"] differ"), "{dropped}");
}
