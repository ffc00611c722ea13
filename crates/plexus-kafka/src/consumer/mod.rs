//! Subscribing: the members of one group on one bus handle share one
//! Kafka consumer (a [`Hub`] and its poll thread); a subscription without
//! a group has a consumer of its own, assigned every partition.

mod commit;
mod hub;
mod member;
mod poll;
mod progress;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use plexus_core::bus::{BusError, SubscribeOptions, Subscription};
use tokio::sync::{Mutex, watch};

use crate::bus::Shared as Bus;
use crate::topic;
use hub::Hub;

/// The consumers of one bus handle.
pub(crate) struct Consumers {
    /// Per (topic, group), the hub its members on this handle share.
    groups: Mutex<HashMap<(String, String), Weak<member::Shared>>>,
    next_member: AtomicU64,
    /// How many poll threads run.
    running: watch::Sender<usize>,
}

impl Consumers {
    pub(crate) fn new() -> Self {
        Consumers {
            groups: Mutex::new(HashMap::new()),
            next_member: AtomicU64::new(0),
            running: watch::Sender::new(0),
        }
    }

    /// Waits (at most `bound`) until every poll thread has committed and
    /// left (they were told to by the bus's closing).
    pub(crate) async fn stopped(&self, bound: Duration) -> bool {
        let mut running = self.running.subscribe();
        tokio::time::timeout(bound, running.wait_for(|n| *n == 0))
            .await
            .is_ok()
    }
}

/// Joins `options.group` (or a group of one) on `topic`.
pub(crate) async fn subscribe(
    bus: &Arc<Bus>,
    topic: &str,
    options: SubscribeOptions,
) -> Result<Subscription, BusError> {
    topic::check(topic)?;
    let partitions = bus.topics.ensure(bus, topic).await?;
    let id = bus.consumers.next_member.fetch_add(1, Ordering::Relaxed);
    let Some(group) = &options.group else {
        let shared = start(bus, topic, None, &options, partitions, id).await?;
        return Ok(member::subscription(shared, id));
    };
    let mut groups = bus.consumers.groups.lock().await;
    let key = (topic.to_owned(), group.clone());
    if let Some(shared) = groups.get(&key).and_then(Weak::upgrade)
        && shared
            .hub
            .join(id, options.max_in_flight, options.ack_deadline)
    {
        return Ok(member::subscription(shared, id));
    }
    let group_id = topic::group_id(&bus.config.group_prefix, topic, group);
    let shared = start(bus, topic, Some(group_id), &options, partitions, id).await?;
    groups.retain(|_, hub| hub.strong_count() > 0);
    groups.insert(key, Arc::downgrade(&shared));
    Ok(member::subscription(shared, id))
}

/// Makes a hub with member `id`, its consumer, poll thread, timer and
/// (for a group) committer.
async fn start(
    bus: &Arc<Bus>,
    topic: &str,
    group: Option<String>,
    options: &SubscribeOptions,
    partitions: i32,
    id: u64,
) -> Result<Arc<member::Shared>, BusError> {
    let stop = bus.closed.child_token();
    let grouped = group.is_some();
    let hub = Arc::new(Hub::new(
        group.as_deref(),
        bus.config.consumer_buffer,
        stop.clone(),
    ));
    hub.join(id, options.max_in_flight, options.ack_deadline);
    let topic: Arc<str> = Arc::from(topic);
    let plan = poll::Plan {
        config: bus.config.clone(),
        topic: Arc::clone(&topic),
        group,
        start: options.start,
        partitions,
    };
    let for_start = Arc::clone(&hub);
    let started = tokio::task::spawn_blocking(move || poll::start(&plan, for_start)).await;
    let consumer = match started {
        Ok(Ok(consumer)) => consumer,
        Ok(Err(error)) => {
            stop.cancel();
            return Err(bus.error(&format!("subscribing to `{topic}`"), error));
        }
        Err(error) => {
            stop.cancel();
            return Err(bus.error(&format!("subscribing to `{topic}`"), error));
        }
    };
    if grouped {
        tokio::spawn(commit::run(
            Arc::clone(&hub),
            Arc::downgrade(&consumer),
            Arc::clone(&topic),
        ));
    }
    tokio::spawn(timer(Arc::clone(&hub)));
    let running = Running::start(&bus.consumers.running);
    let (for_poll, for_topic) = (Arc::clone(&hub), Arc::clone(&topic));
    let spawned = std::thread::Builder::new()
        .name("plexus-kafka-poll".to_owned())
        .spawn(move || {
            let _running = running;
            poll::run(consumer, for_poll, for_topic);
        });
    if let Err(error) = spawned {
        stop.cancel();
        return Err(bus.error("starting a consumer thread", error));
    }
    Ok(Arc::new(member::Shared {
        hub,
        topic,
        name: Arc::from(bus.name.as_str()),
    }))
}

/// Counts a poll thread as running while it lives.
struct Running(watch::Sender<usize>);

impl Running {
    fn start(running: &watch::Sender<usize>) -> Self {
        running.send_modify(|n| *n += 1);
        Running(running.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Hands out again, at their time, deliveries past their ack deadline
/// and nacked messages past their delay.
async fn timer(hub: Arc<Hub>) {
    let mut next: Option<tokio::time::Instant> = None;
    loop {
        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = sleep => {}
            () = hub.timer.notified() => {}
            () = hub.stop.cancelled() => return,
        }
        next = hub.expire(tokio::time::Instant::now());
    }
}
