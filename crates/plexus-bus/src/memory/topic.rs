//! One topic: a bounded log of messages and the groups reading it.

use std::collections::VecDeque;

// A fast hasher: a topic's groups are looked up for every delivery.
use foldhash::HashMap;
use std::sync::Arc;

use plexus_core::Message;
use tokio::sync::Notify;

use super::group::{Group, Lease};

/// How many messages a group takes from the log ahead of its deliveries
/// (messages held back behind an earlier one of their key count too).
const WINDOW: usize = 10_000;

#[derive(Debug)]
pub(super) struct Topic {
    /// Offset of `log[0]`.
    base: u64,
    log: VecDeque<Message>,
    pub(super) groups: HashMap<String, Group>,
    /// Wakes members: a publish, an answer that frees something, a group
    /// leaving, the bus closing.
    pub(super) changed: Arc<Notify>,
    /// Wakes publishers waiting for room.
    pub(super) room: Arc<Notify>,
    /// With publishers waiting for room: the log length at which the
    /// first of them fits. They are woken once, when acks bring the log
    /// down to it — not on every ack, which would wake all of them for
    /// one message of room each.
    pub(super) wake_at_len: Option<usize>,
}

impl Topic {
    pub(super) fn new() -> Self {
        Topic {
            base: 0,
            log: VecDeque::new(),
            groups: HashMap::default(),
            changed: Arc::new(Notify::new()),
            room: Arc::new(Notify::new()),
            wake_at_len: None,
        }
    }

    /// The offset the next message will get.
    pub(super) fn end(&self) -> u64 {
        self.base + self.log.len() as u64
    }

    pub(super) fn base(&self) -> u64 {
        self.base
    }

    pub(super) fn len(&self) -> usize {
        self.log.len()
    }

    /// Acknowledges `lease` of `group`, drops what every group is done
    /// with, and wakes whoever may now make progress.
    /// Returns what it removed from the log, to be dropped after
    /// unlocking.
    pub(super) fn ack(&mut self, group: &str, lease: Lease) -> Vec<Message> {
        let key = self
            .log
            .get((lease.offset.wrapping_sub(self.base)) as usize)
            .and_then(Message::key);
        let Some(state) = self.groups.get_mut(group) else {
            return Vec::new();
        };
        let Some(wake_members) = state.ack(lease, key) else {
            return Vec::new();
        };
        if wake_members {
            self.changed.notify_waiters();
        }
        let Some(at) = self.wake_at_len else {
            return Vec::new();
        };
        let removed = self.truncate();
        if self.log.len() <= at {
            self.wake_at_len = None;
            self.room.notify_waiters();
        }
        removed
    }

    /// Messages the slowest group has not taken yet.
    pub(super) fn backlog(&self) -> usize {
        let end = self.end();
        self.groups
            .values()
            .map(|g| end.saturating_sub(g.cursor) as usize)
            .max()
            .unwrap_or(0)
    }

    /// Registers a publisher waiting until the log is at most `len` long.
    pub(super) fn wait_for_len(&mut self, len: usize) {
        self.wake_at_len = Some(self.wake_at_len.map_or(len, |at| at.max(len)));
    }

    /// Removes what every group is done with from the log and returns
    /// it, for the caller to drop once it has released the topic's lock
    /// (freeing messages is most of the work).
    #[must_use = "drop the removed messages after unlocking the topic"]
    pub(super) fn truncate(&mut self) -> Vec<Message> {
        let Some(low) = self.groups.values().map(Group::low_watermark).min() else {
            return Vec::new();
        };
        let n = usize::try_from(low.saturating_sub(self.base))
            .unwrap_or(usize::MAX)
            .min(self.log.len());
        self.base += n as u64;
        self.log.drain(..n).collect()
    }

    /// Removes the oldest `n` messages (a topic without groups is a
    /// bounded window of the latest messages) and returns them, to be
    /// dropped after unlocking.
    #[must_use = "drop the removed messages after unlocking the topic"]
    pub(super) fn drop_oldest(&mut self, n: usize) -> Vec<Message> {
        let n = n.min(self.log.len());
        self.base += n as u64;
        self.log.drain(..n).collect()
    }

    pub(super) fn append(&mut self, batch: Vec<Message>) {
        self.log.extend(batch);
    }

    /// The next delivery for `member` of `group`, taking messages from the
    /// log as needed; `None` when nothing is free for it now.
    pub(super) fn take(
        &mut self,
        group: &str,
        member: u64,
        deadline: tokio::time::Instant,
    ) -> Option<(Lease, Message)> {
        let end = self.end();
        let base = self.base;
        let log = &self.log;
        let state = self.groups.get_mut(group)?;
        loop {
            if let Some(lease) = state.take(member, deadline) {
                let message = log[(lease.offset - base) as usize].clone();
                return Some((lease, message));
            }
            if state.cursor >= end || state.unacked_len() >= WINDOW {
                return None;
            }
            let offset = state.cursor;
            let key = log[(offset - base) as usize].key();
            state.pass(offset, key);
        }
    }
}
