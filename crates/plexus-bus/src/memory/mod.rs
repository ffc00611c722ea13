//! [`MemoryBus`]: the in-memory backend, the reference implementation of
//! the bus contract.
//!
//! Each topic is a bounded log. Each consumer group keeps a cursor into it
//! and the set of messages it has taken and not acknowledged; members of a
//! group take from that set, so a message is out with one member at a
//! time. The next message of a key waits until the one before it is
//! acknowledged (per-key order that holds across nacks and redeliveries),
//! while other keys go ahead. The log drops what every group has
//! acknowledged; a topic at its capacity makes publishers wait, for at
//! most [`MemoryConfig::publish_timeout`], then fail with
//! [`BusError::Full`]. A topic without groups keeps its latest messages
//! (for groups that start at the earliest). Nothing survives the process.

mod group;
mod subscription;
mod topic;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use plexus_core::Message;
use plexus_core::bus::{
    BoxFuture, BusError, Features, Publisher, StartFrom, SubscribeOptions, Subscriber,
    Subscription, check_topic, message_size,
};

use group::Group;
use topic::Topic;

/// Messages a topic's slowest group may be behind before a publish
/// yields its thread once it has appended.
const YIELD_BACKLOG: usize = 1024;

/// The backend's name in errors.
const NAME: &str = "memory bus";

/// The bounds of a [`MemoryBus`].
#[derive(Debug, Clone)]
pub struct MemoryConfig {
    /// Messages a topic holds at most (unacknowledged by some group, or
    /// kept for groups yet to come).
    pub topic_capacity: usize,
    /// How long a publish waits for room in a full topic before failing
    /// with [`BusError::Full`].
    pub publish_timeout: Duration,
    /// The largest message accepted, bytes (payload, attributes, key and
    /// headers).
    pub max_message_bytes: usize,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            topic_capacity: 100_000,
            publish_timeout: Duration::from_secs(5),
            max_message_bytes: 1024 * 1024,
        }
    }
}

/// The in-memory bus: a [`Publisher`] and a [`Subscriber`]. Clones share
/// the same topics.
#[derive(Debug, Clone, Default)]
pub struct MemoryBus {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    config: MemoryConfig,
    topics: Mutex<HashMap<String, SharedTopic>>,
    closed: AtomicBool,
    /// Woken when the bus closes.
    closing: tokio::sync::Notify,
    next_member: AtomicU64,
}

/// A topic behind its own lock: publishers and members of different
/// topics never wait for each other.
type SharedTopic = Arc<Mutex<Topic>>;

/// Locks a topic. Every change under the lock is a few map operations that
/// leave it consistent, so a panic elsewhere does not spoil it.
fn lock(topic: &Mutex<Topic>) -> MutexGuard<'_, Topic> {
    topic.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    /// The topic named `name`, created if new.
    fn topic(&self, name: &str) -> SharedTopic {
        let mut topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(topic) = topics.get(name) {
            return Arc::clone(topic);
        }
        let topic = Arc::new(Mutex::new(Topic::new()));
        topics.insert(name.to_owned(), Arc::clone(&topic));
        topic
    }

    fn all_topics(&self) -> Vec<SharedTopic> {
        let topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        topics.values().cloned().collect()
    }
}

impl MemoryBus {
    /// A bus with the default bounds.
    pub fn new() -> Self {
        Self::with_config(MemoryConfig::default())
    }

    /// A bus with `config`'s bounds.
    pub fn with_config(config: MemoryConfig) -> Self {
        MemoryBus {
            inner: Arc::new(Inner {
                config,
                ..Inner::default()
            }),
        }
    }

    fn check_open(&self, what: &'static str) -> Result<(), BusError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(BusError::Closed {
                backend: NAME.to_owned(),
                what,
            });
        }
        Ok(())
    }

    async fn publish_batch(&self, topic: &str, mut batch: Vec<Message>) -> Result<(), BusError> {
        self.check_open("publisher")?;
        check_topic(topic)?;
        let limit = self.inner.config.max_message_bytes;
        for message in &batch {
            let size = message_size(message);
            if size > limit {
                return Err(BusError::TooLarge {
                    backend: NAME.to_owned(),
                    topic: topic.to_owned(),
                    id: message.id().to_owned(),
                    size,
                    limit,
                });
            }
        }
        if batch.is_empty() {
            return Ok(());
        }
        let capacity = self.inner.config.topic_capacity;
        if batch.len() > capacity {
            return Err(BusError::Full {
                topic: topic.to_owned(),
                reason: format!(
                    "a batch of {} messages is larger than the topic's capacity of {capacity}",
                    batch.len()
                ),
            });
        }
        let give_up = tokio::time::Instant::now() + self.inner.config.publish_timeout;
        let shared = self.inner.topic(topic);
        // Woken when there is room for this batch, or for an eighth of the
        // topic if the batch is smaller (fewer, fuller wake-ups).
        let wanted = batch.len().max(capacity / 8).min(capacity);
        loop {
            self.check_open("publisher")?;
            // Messages removed from the log, freed after unlocking.
            let mut removed;
            let waiting = {
                let mut state = lock(&shared);
                removed = state.truncate();
                let room = capacity - state.len();
                if room >= batch.len() || state.groups.is_empty() {
                    if room < batch.len() {
                        removed.extend(state.drop_oldest(batch.len() - room));
                    }
                    state.append(std::mem::take(&mut batch));
                    state.changed.notify_waiters();
                    Err(state.backlog())
                } else {
                    state.wait_for_len(capacity - wanted);
                    Ok(Arc::clone(&state.room))
                }
            };
            drop(removed);
            let changed = match waiting {
                Ok(room) => room,
                Err(backlog) => {
                    if backlog > YIELD_BACKLOG {
                        // Consumers are behind: give them the thread now,
                        // while what was published is still in cache.
                        tokio::task::yield_now().await;
                    }
                    return Ok(());
                }
            };
            let notified = changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // Room may have been made between the check and `enable`,
            // and a wake-up then may have used up the registration.
            let removed = {
                let mut state = lock(&shared);
                let removed = state.truncate();
                if capacity - state.len() >= batch.len() {
                    continue;
                }
                state.wait_for_len(capacity - wanted);
                removed
            };
            drop(removed);
            let waited = tokio::select! {
                () = &mut notified => None,
                () = tokio::time::sleep_until(give_up) => Some(false),
                () = self.inner.closing.notified() => Some(true),
            };
            match waited {
                None => {}
                Some(false) => {
                    return Err(BusError::Full {
                        topic: topic.to_owned(),
                        reason: format!(
                            "it holds its capacity of {capacity} messages not yet acknowledged by every group, and none was acknowledged within {:?}",
                            self.inner.config.publish_timeout
                        ),
                    });
                }
                Some(true) => {
                    return Err(BusError::Closed {
                        backend: NAME.to_owned(),
                        what: "publisher",
                    });
                }
            }
        }
    }

    fn join(
        &self,
        topic: &str,
        options: &SubscribeOptions,
    ) -> Result<(SharedTopic, String, bool, u64), BusError> {
        self.check_open("subscriber")?;
        check_topic(topic)?;
        options.check(NAME, &Publisher::features(self))?;
        let member = self.inner.next_member.fetch_add(1, Ordering::Relaxed);
        let (group, private) = match &options.group {
            Some(group) => (group.clone(), false),
            None => (format!("~private-{member}"), true),
        };
        let shared = self.inner.topic(topic);
        let mut state = lock(&shared);
        let start = match options.start {
            StartFrom::New => state.end(),
            StartFrom::Earliest => state.base(),
        };
        state
            .groups
            .entry(group.clone())
            .or_insert_with(|| Group::new(start))
            .join(member, options.max_in_flight);
        drop(state);
        Ok((shared, group, private, member))
    }
}

impl Publisher for MemoryBus {
    fn publish<'a>(
        &'a self,
        topic: &'a str,
        batch: Vec<Message>,
    ) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(self.publish_batch(topic, batch))
    }

    fn close(&self) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(async move {
            close(&self.inner);
            Ok(())
        })
    }

    fn features(&self) -> Features {
        Features {
            persistent: false,
            per_key_order: true,
            consumer_groups: true,
            replay: true,
            nack_delay: true,
            max_message_bytes: self.inner.config.max_message_bytes,
            exclusive_groups: false,
        }
    }
}

impl Subscriber for MemoryBus {
    fn subscribe<'a>(
        &'a self,
        topic: &'a str,
        options: SubscribeOptions,
    ) -> BoxFuture<'a, Result<Subscription, BusError>> {
        Box::pin(async move {
            let (shared, group, private, member) = self.join(topic, &options)?;
            Ok(subscription::open(
                Arc::clone(&self.inner),
                shared,
                topic.to_owned(),
                group,
                private,
                member,
                options,
            ))
        })
    }

    fn close(&self) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(async move {
            close(&self.inner);
            Ok(())
        })
    }

    fn features(&self) -> Features {
        Publisher::features(self)
    }
}

fn close(inner: &Inner) {
    inner.closed.store(true, Ordering::Release);
    inner.closing.notify_waiters();
    for topic in inner.all_topics() {
        let topic = lock(&topic);
        topic.changed.notify_waiters();
        topic.room.notify_waiters();
    }
}
