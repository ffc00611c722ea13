//! The messages this writer appended lately, by `seq`, so that a claim
//! hands them out without reading them back from the database.
//!
//! `seq` is never reused (AUTOINCREMENT), so a cached message is exactly
//! the stored one for as long as it is cached — except after a rollback,
//! which gives its seqs back: [`Cache::rollback`] forgets what the failed
//! transaction added. Bounded in bytes; the oldest leave first.

use std::collections::VecDeque;

use plexus_core::Message;

use plexus_core::bus::message_size;

/// Recently appended messages in ascending `seq`.
pub(super) struct Cache {
    entries: VecDeque<(i64, Message, usize)>,
    bytes: usize,
    limit: usize,
    /// Entries before the open transaction's first addition.
    committed: usize,
}

impl Cache {
    pub(super) fn new(limit: usize) -> Self {
        Cache {
            entries: VecDeque::new(),
            bytes: 0,
            limit,
            committed: 0,
        }
    }

    /// Adds `messages`, stored as the consecutive seqs from `first`.
    pub(super) fn extend<'m>(
        &mut self,
        first: i64,
        messages: impl IntoIterator<Item = &'m Message>,
    ) {
        if self.limit == 0 {
            return;
        }
        if let Some((last, _, _)) = self.entries.back()
            && *last >= first
        {
            // Not ascending (cannot happen with AUTOINCREMENT): keep the
            // cache consistent by starting over from this transaction.
            self.clear();
        }
        for (seq, message) in (first..).zip(messages) {
            let size = message_size(message).max(1);
            self.bytes += size;
            self.entries.push_back((seq, message.clone(), size));
        }
    }

    /// The message stored as `seq`, if cached.
    pub(super) fn get(&self, seq: i64) -> Option<&Message> {
        let index = self.entries.binary_search_by_key(&seq, |e| e.0).ok()?;
        Some(&self.entries[index].1)
    }

    /// The open transaction committed: its additions stay; the oldest
    /// entries leave while over the bound.
    pub(super) fn commit(&mut self) {
        while self.bytes > self.limit
            && let Some((_, _, size)) = self.entries.pop_front()
        {
            self.bytes -= size;
        }
        self.committed = self.entries.len();
    }

    /// The open transaction rolled back: forgets its additions.
    pub(super) fn rollback(&mut self) {
        while self.entries.len() > self.committed
            && let Some((_, _, size)) = self.entries.pop_back()
        {
            self.bytes -= size;
        }
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
        self.committed = 0;
    }
}

#[cfg(test)]
mod tests {
    use plexus_core::Message;

    use super::Cache;

    fn message(n: usize) -> Message {
        Message::builder("t", "/s")
            .payload("text/plain", vec![b'x'; n])
            .build()
            .unwrap()
    }

    #[test]
    fn a_rollback_forgets_what_the_transaction_added() {
        let mut cache = Cache::new(1 << 20);
        cache.extend(1, &[message(1), message(2)]);
        cache.commit();
        cache.extend(3, &[message(3)]);
        assert!(cache.get(3).is_some());
        cache.rollback();
        assert!(cache.get(3).is_none());
        assert_eq!(cache.get(2).unwrap().payload().len(), 2);
        // The seq given back is used again by the next transaction.
        cache.extend(3, &[message(7)]);
        cache.commit();
        assert_eq!(cache.get(3).unwrap().payload().len(), 7);
    }

    #[test]
    fn the_oldest_leave_beyond_the_bound() {
        let one = plexus_core::bus::message_size(&message(100));
        let mut cache = Cache::new(3 * one);
        cache.extend(
            10,
            &[message(100), message(100), message(100), message(100)],
        );
        cache.commit();
        assert!(cache.get(10).is_none());
        assert!(cache.get(11).is_some() && cache.get(13).is_some());
        assert!(cache.get(14).is_none());
    }
}
