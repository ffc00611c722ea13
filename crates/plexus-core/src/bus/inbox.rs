//! What the inboxes (`SqliteInbox`, `PostgresInbox`) share: their answer
//! ([`Seen`]) and the check of a consumer's name.

use super::BusError;

/// Whether a consumer had processed a message before, as an inbox
/// records it in the transaction of the message's effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// The first time (within the inbox's window): apply the effect and
    /// commit it with the record.
    First,
    /// Processed before: apply nothing, acknowledge.
    Again,
}

/// Refuses an empty consumer name: an inbox keeps its records per
/// consumer, the one the effect belongs to.
pub fn check_consumer(consumer: &str) -> Result<(), BusError> {
    if consumer.is_empty() {
        return Err(BusError::InvalidOption {
            option: "consumer",
            reason: "the inbox needs a consumer name, the one the effect belongs to".to_owned(),
        });
    }
    Ok(())
}
