//! In-process wake-ups: a version counter per topic, bumped after every
//! commit that may give a subscription of the topic something to take.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::watch;

/// The topics' change counters.
#[derive(Debug, Default)]
pub(crate) struct Notifier {
    topics: Mutex<HashMap<String, watch::Sender<u64>>>,
}

impl Notifier {
    fn topics(&self) -> MutexGuard<'_, HashMap<String, watch::Sender<u64>>> {
        // Every change under this lock is one map operation: a panic
        // elsewhere cannot leave it half done.
        self.topics.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A receiver that sees every change of `topic` from now on.
    pub(crate) fn watch(&self, topic: &str) -> watch::Receiver<u64> {
        let mut topics = self.topics();
        match topics.get(topic) {
            Some(sender) => sender.subscribe(),
            None => {
                let (sender, receiver) = watch::channel(0);
                topics.insert(topic.to_owned(), sender);
                receiver
            }
        }
    }

    /// Wakes the subscriptions of `topic`; forgets the topic when nobody
    /// watches it any more.
    pub(crate) fn wake(&self, topic: &str) {
        let mut topics = self.topics();
        if let Some(sender) = topics.get(topic) {
            if sender.receiver_count() == 0 {
                topics.remove(topic);
            } else {
                sender.send_modify(|version| *version = version.wrapping_add(1));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Notifier;

    #[test]
    fn a_wake_is_seen_by_watchers_of_that_topic_only() {
        let notifier = Notifier::default();
        let mut orders = notifier.watch("orders");
        let mut other = notifier.watch("other");
        orders.borrow_and_update();
        other.borrow_and_update();
        notifier.wake("orders");
        assert!(orders.has_changed().unwrap());
        assert!(!other.has_changed().unwrap());
        drop(orders);
        notifier.wake("orders");
        assert_eq!(
            notifier.topics().len(),
            1,
            "an unwatched topic is forgotten"
        );
    }
}
