//! Ready-made subscription members for a [`Crew`].

use std::sync::Arc;

use plexus_core::bus::Subscription;

use super::{Crew, Tally, consume, number_of};

/// Picks a group's [`Tally`] out of a scenario's record.
pub(crate) type Pick<T> = fn(&mut T) -> &mut Tally;

/// Starts a member that acknowledges every delivery, counting it in the
/// tally `pick` chooses (a message without a number fails the scenario).
pub(crate) fn ack_all<T: Send + Sync + 'static>(
    crew: &mut Crew<T>,
    subscription: Subscription,
    who: String,
    pick: Pick<T>,
) {
    let record = crew.record();
    let name = who.clone();
    crew.spawn(consume(subscription, who, move |delivery| {
        let record = Arc::clone(&record);
        let name = name.clone();
        async move {
            let Some(n) = number_of(delivery.message()) else {
                return Err(format!(
                    "{name}: received message `{}` that this scenario did not publish",
                    delivery.message().id()
                ));
            };
            record.send_modify(|r| pick(r).deliver(n));
            delivery
                .ack()
                .await
                .map_err(|e| format!("{name}: acknowledging message {n}: {e}"))?;
            record.send_modify(|r| pick(r).ack(n));
            Ok(true)
        }
    }));
}
