//! Wake-ups: a publish makes the bus send `pg_notify(schema, topic)`
//! after it committed; each bus with subscriptions LISTENs on its schema's
//! channel and wakes the members of the topic. A lost notification (the
//! listener reconnecting, a publisher that does not notify) only delays
//! a member until its poll interval.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sqlx::postgres::{PgConnection, PgListener};
use sqlx::{Connection, PgPool};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How long the listener waits before connecting again after a failure.
const RETRY: Duration = Duration::from_millis(200);

/// Per topic, per consumer group: what the group's members wait on, and
/// how many they are.
type Topics = HashMap<Arc<str>, HashMap<i64, (Arc<Notify>, usize)>>;

/// The members waiting for news of each topic.
#[derive(Debug, Default)]
pub(crate) struct Wakes {
    topics: Mutex<Topics>,
}

/// A member's registration for its topic's wake-ups; deregisters on drop.
#[derive(Debug)]
pub(crate) struct Waker {
    wakes: Arc<Wakes>,
    topic: Arc<str>,
    group: i64,
    pub(crate) notify: Arc<Notify>,
}

impl Waker {
    /// Passes a wake-up on to another member of the group (one whose
    /// claim filled its room leaves the rest to the next).
    pub(crate) fn pass_on(&self) {
        self.notify.notify_one();
    }
}

impl Drop for Waker {
    fn drop(&mut self) {
        let mut topics = self.wakes.lock();
        if let Some(groups) = topics.get_mut(&self.topic) {
            if let Some((notify, members)) = groups.get_mut(&self.group) {
                *members -= 1;
                if *members == 0 {
                    groups.remove(&self.group);
                } else {
                    // A wake-up this member held goes to another.
                    notify.notify_one();
                }
            }
            if groups.is_empty() {
                topics.remove(&self.topic);
            }
        }
    }
}

impl Wakes {
    fn lock(&self) -> std::sync::MutexGuard<'_, Topics> {
        self.topics.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a member of `group` on `topic`.
    pub(crate) fn register(self: &Arc<Self>, topic: &Arc<str>, group: i64) -> Waker {
        let mut topics = self.lock();
        let entry = topics
            .entry(Arc::clone(topic))
            .or_default()
            .entry(group)
            .or_insert_with(|| (Arc::new(Notify::new()), 0));
        entry.1 += 1;
        Waker {
            wakes: Arc::clone(self),
            topic: Arc::clone(topic),
            group,
            notify: Arc::clone(&entry.0),
        }
    }

    /// Wakes one member of each group of `topic`: one claim takes what
    /// the notification announced (the member passes the wake-up on when
    /// its room is full), instead of every member queueing on the
    /// group's lock for it. With no member waiting, the next to wait
    /// claims at once.
    pub(crate) fn wake(&self, topic: &str) {
        if let Some(groups) = self.lock().get(topic) {
            for (notify, _) in groups.values() {
                notify.notify_one();
            }
        }
    }

    /// Wakes every waiting member (notifications may have been lost).
    pub(crate) fn wake_all(&self) {
        for groups in self.lock().values() {
            for (notify, _) in groups.values() {
                notify.notify_waiters();
                notify.notify_one();
            }
        }
    }
}

/// Listens on `channel` until `cancel`, waking the members of each topic
/// notified (except by the bus's own sender, see [`notify`]), and all of
/// them after (re)connecting.
pub(crate) async fn listen(
    pool: PgPool,
    channel: String,
    wakes: Arc<Wakes>,
    sender: Arc<AtomicU32>,
    cancel: CancellationToken,
) {
    let mut listener: Option<PgListener> = None;
    loop {
        let Some(current) = listener.as_mut() else {
            let connected = tokio::select! {
                connected = connect(&pool, &channel) => connected,
                () = cancel.cancelled() => return,
            };
            match connected {
                Ok(connected) => {
                    listener = Some(connected);
                    wakes.wake_all();
                }
                Err(error) => {
                    tracing::warn!(%error, channel, "listening for plexus wake-ups failed; members poll meanwhile");
                    if pause(&cancel).await {
                        return;
                    }
                }
            }
            continue;
        };
        let received = tokio::select! {
            received = current.try_recv() => received,
            () = cancel.cancelled() => return,
        };
        match received {
            Ok(Some(notification)) => {
                if notification.process_id() != sender.load(Ordering::Acquire) {
                    wakes.wake(notification.payload());
                }
            }
            // The connection was lost; the next try_recv reconnects.
            Ok(None) => wakes.wake_all(),
            // The bus closing (its pool first) is no lost connection.
            Err(_) if cancel.is_cancelled() || pool.is_closed() => return,
            Err(error) => {
                tracing::warn!(%error, channel, "the plexus wake-up listener lost its connection");
                listener = None;
                wakes.wake_all();
                if pause(&cancel).await {
                    return;
                }
            }
        }
    }
}

async fn connect(pool: &PgPool, channel: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(channel).await?;
    Ok(listener)
}

/// Waits [`RETRY`]; `true` when cancelled meanwhile.
async fn pause(cancel: &CancellationToken) -> bool {
    tokio::select! {
        () = tokio::time::sleep(RETRY) => false,
        () = cancel.cancelled() => true,
    }
}

/// The topics published to since the last notification, sent by one task
/// in one statement (concurrent publishes share it).
#[derive(Debug, Default)]
pub(crate) struct Notifier {
    topics: Mutex<HashSet<Arc<str>>>,
    news: Notify,
}

impl Notifier {
    /// Notes that `topic` has a new commit.
    pub(crate) fn published(&self, topic: &str) {
        let mut topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        if !topics.contains(topic) {
            topics.insert(Arc::from(topic));
        }
        drop(topics);
        self.news.notify_one();
    }

    fn take(&self) -> Vec<String> {
        let mut topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        topics.drain().map(|topic| topic.to_string()).collect()
    }
}

/// Sends the notifications of `notifier` on `channel` until `cancel`, on
/// a connection of its own (made like the pool's, again after a failure),
/// in transactions that do not wait for their commit to reach disk (a
/// notification needs no durability). The connection's server process is
/// kept in `sender`, so that the bus's listener can pass over the
/// notifications it sent itself: the bus woke its own members when it
/// published.
pub(crate) async fn notify(
    pool: PgPool,
    channel: String,
    notifier: Arc<Notifier>,
    notify_sql: &'static str,
    sender: Arc<AtomicU32>,
    cancel: CancellationToken,
) {
    let mut connection: Option<PgConnection> = None;
    loop {
        tokio::select! {
            () = notifier.news.notified() => {}
            () = cancel.cancelled() => break,
        }
        let topics = notifier.take();
        if topics.is_empty() {
            continue;
        }
        let sent = tokio::select! {
            sent = send(&pool, &mut connection, &sender, notify_sql, &channel, &topics) => sent,
            () = cancel.cancelled() => break,
        };
        if let Err(error) = sent {
            sender.store(0, Ordering::Release);
            connection = None;
            tracing::warn!(%error, "sending plexus wake-ups failed; members poll meanwhile");
        }
    }
    if let Some(connection) = connection {
        // Closed, not dropped: the server sees a goodbye, not a lost client.
        let _ = tokio::time::timeout(RETRY, connection.close()).await;
    }
}

async fn send(
    pool: &PgPool,
    connection: &mut Option<PgConnection>,
    sender: &AtomicU32,
    notify_sql: &str,
    channel: &str,
    topics: &[String],
) -> Result<(), sqlx::Error> {
    let connected = match connection {
        Some(connected) => connected,
        None => {
            let mut connected = PgConnection::connect_with(&pool.connect_options()).await?;
            let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
                .fetch_one(&mut connected)
                .await?;
            sender.store(u32::try_from(pid).unwrap_or(0), Ordering::Release);
            connection.insert(connected)
        }
    };
    sqlx::query(notify_sql)
        .bind(channel)
        .bind(topics)
        .execute(connected)
        .await?;
    Ok(())
}
