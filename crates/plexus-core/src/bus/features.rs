//! [`Features`]: what a backend guarantees, declared once and checked by
//! the conformance suite.

/// What a backend guarantees. A configuration asking for more is refused
/// at start with an error naming the missing feature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Features {
    /// Accepted messages survive the process (and, with the backend's
    /// durability settings, the machine) stopping.
    pub persistent: bool,
    /// The messages of one key reach a group in publish order, one at a
    /// time.
    pub per_key_order: bool,
    /// Named consumer groups whose members share the messages.
    pub consumer_groups: bool,
    /// A new group can start at the earliest retained message
    /// ([`StartFrom::Earliest`](super::StartFrom::Earliest)).
    pub replay: bool,
    /// `nack(delay)` waits `delay` before the redelivery (otherwise the
    /// redelivery may come sooner).
    pub nack_delay: bool,
    /// The largest message (payload plus attributes and headers) accepted,
    /// bytes.
    pub max_message_bytes: usize,
    /// Exclusive groups ([`SubscribeOptions::exclusive`](super::SubscribeOptions::exclusive)):
    /// one member at a time takes all of a group's messages, in order.
    pub exclusive_groups: bool,
}

impl Default for Features {
    /// Nothing guaranteed beyond at-least-once delivery; 1 MiB messages.
    fn default() -> Self {
        Features {
            persistent: false,
            per_key_order: false,
            consumer_groups: false,
            replay: false,
            nack_delay: false,
            max_message_bytes: 1024 * 1024,
            exclusive_groups: false,
        }
    }
}
