//! Topic names as Kafka accepts them, and the Kafka group of a plexus
//! consumer group.

use plexus_core::bus::{BusError, check_topic};

/// The longest Kafka topic name.
const MAX_KAFKA_TOPIC: usize = 249;

/// Checks that `topic` is a valid plexus topic and a valid Kafka topic:
/// 1 to 249 ASCII letters, digits, `.`, `_` or `-`, and not `.` or `..`.
pub(crate) fn check(topic: &str) -> Result<(), BusError> {
    check_topic(topic)?;
    let valid = topic.len() <= MAX_KAFKA_TOPIC
        && topic != "."
        && topic != ".."
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if valid {
        return Ok(());
    }
    Err(BusError::InvalidTopic {
        topic: topic.chars().take(64).collect(),
        reason: format!(
            "a Kafka topic is 1 to {MAX_KAFKA_TOPIC} ASCII letters, digits, `.`, `_` or `-` \
             (and not `.` or `..`)"
        ),
    })
}

/// The Kafka group id of plexus group `group` on `topic`: a Kafka group
/// covers one topic here, so that the members of one topic's group never
/// rebalance another's. `/` cannot occur in a topic, so distinct pairs
/// never share an id.
pub(crate) fn group_id(prefix: &str, topic: &str, group: &str) -> String {
    format!("{prefix}{topic}/{group}")
}

#[cfg(test)]
mod tests {
    use super::{check, group_id};

    #[test]
    fn topics_are_kafka_names_or_a_clear_error() {
        for topic in ["shop.orders", "a_b-c", &"t".repeat(249)] {
            assert!(check(topic).is_ok(), "{topic}");
        }
        for topic in ["", ".", "..", "a/b", "ordres-é", "a b", &"t".repeat(250)] {
            let error = check(topic).unwrap_err().to_string();
            assert!(error.contains("invalid topic"), "{topic}: {error}");
        }
    }

    #[test]
    fn group_ids_keep_topic_and_group_apart() {
        assert_eq!(group_id("plexus/", "a.b", "c"), "plexus/a.b/c");
        assert_ne!(group_id("p/", "a", "b.c"), group_id("p/", "a.b", "c"));
    }
}
