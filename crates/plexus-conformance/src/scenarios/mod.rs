//! The scenarios, one public async fn each. Each takes the [`Backend`](crate::Backend)
//! under test, uses fresh topics and groups, and returns
//! [`Outcome::Passed`](crate::Outcome::Passed), returns
//! [`Outcome::Skipped`](crate::Outcome::Skipped) with the reason printed,
//! or panics saying what was expected and what happened.

mod bad_input;
mod dead_letter;
mod deadline;
mod exclusive;
mod groups;
mod interop;
mod isolation;
mod lanes;
mod order;
mod persistence;
mod publish_subscribe;
mod publisher_close;
mod reconnect;
mod redelivery;
mod subscriber_close;

pub use bad_input::bad_input;
pub use dead_letter::poison_to_dead_letter;
pub use deadline::deadline_propagates;
pub use exclusive::exclusive_groups;
pub use groups::{concurrent_subscribe, consumer_groups};
pub use interop::cloudevents_interop;
pub use isolation::topic_isolation;
pub use lanes::parallel_across_keys;
pub use order::publish_subscribe_in_order;
pub use persistence::{durable_across_restart, new_subscriber_receives_old_messages};
pub use publish_subscribe::publish_subscribe;
pub use publisher_close::publisher_close;
pub use reconnect::reconnect;
pub use redelivery::{no_ack, resend_on_error};
pub use subscriber_close::{
    concurrent_close, continue_after_errors, continue_after_subscribe_close,
};
