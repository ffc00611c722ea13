//! Generated message ids: UUIDv7 from the message's own creation time.

use std::time::{SystemTime, UNIX_EPOCH};

use uuid::timestamp::context::{ContextV7, ThreadLocalContext};
use uuid::{Timestamp, Uuid};

thread_local! {
    /// Per thread, so concurrent publishers do not share one counter;
    /// ids of one thread are increasing, ids of different threads are
    /// told apart by their random bits.
    static CONTEXT: ContextV7 = const { ContextV7::new() };
}

/// A fresh UUIDv7 id whose timestamp is `time`.
pub(super) fn generate(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let timestamp = Timestamp::from_unix(
        ThreadLocalContext::new(&CONTEXT),
        since_epoch.as_secs(),
        since_epoch.subsec_nanos(),
    );
    let mut text = Uuid::encode_buffer();
    Uuid::new_v7(timestamp)
        .hyphenated()
        .encode_lower(&mut text)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use super::generate;

    #[test]
    fn ids_are_v7_carry_the_time_and_never_repeat() {
        let time = UNIX_EPOCH + Duration::from_millis(1_764_000_000_123);
        let ids: Vec<String> = (0..10_000).map(|_| generate(time)).collect();
        let unique: HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        let uuid = uuid::Uuid::parse_str(&ids[0]).unwrap();
        assert_eq!(uuid.get_version_num(), 7);
        let (secs, nanos) = uuid.get_timestamp().unwrap().to_unix();
        assert_eq!((secs, nanos / 1_000_000), (1_764_000_000, 123));
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "increasing within a thread"
        );
        assert_eq!(generate(SystemTime::now()).len(), 36);
    }
}
