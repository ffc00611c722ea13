//! What the scenarios share: the run context, the task crew, the tally
//! of deliveries and the test messages.

mod crew;
mod ctx;
mod members;
mod messages;
mod routed;
mod tally;

pub(crate) use crew::Crew;
pub(crate) use ctx::Ctx;
pub(crate) use members::ack_all;
pub(crate) use messages::{number_of, numbered, seq_of};
pub(crate) use routed::Routed;
pub(crate) use tally::{Tally, consume};
