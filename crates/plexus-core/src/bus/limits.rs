//! Checks every backend applies the same way: topic names, and the size
//! of a message as a backend's limit counts it.

use crate::Message;

use super::BusError;

/// The longest topic name, in bytes.
pub const MAX_TOPIC_BYTES: usize = 255;

/// Checks a topic name: 1 to [`MAX_TOPIC_BYTES`] bytes, no whitespace or
/// control characters. Backends may refuse more (a broker's own rules),
/// never less.
pub fn check_topic(topic: &str) -> Result<(), BusError> {
    let reason = if topic.is_empty() {
        "a topic name is not empty".to_owned()
    } else if topic.len() > MAX_TOPIC_BYTES {
        format!("a topic name is at most {MAX_TOPIC_BYTES} bytes")
    } else if topic.chars().any(|c| c.is_whitespace() || c.is_control()) {
        "a topic name has no spaces or control characters".to_owned()
    } else {
        return Ok(());
    };
    Err(BusError::InvalidTopic {
        topic: topic.chars().take(64).collect(),
        reason,
    })
}

/// A message's size as `Features::max_message_bytes` counts it: payload,
/// attributes, key and headers.
pub fn message_size(message: &Message) -> usize {
    message.payload().len()
        + message.id().len()
        + message.source().len()
        + message.ty().len()
        + message.subject().map_or(0, str::len)
        + message.data_content_type().map_or(0, str::len)
        + message.key().map_or(0, str::len)
        + message
            .headers()
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::{check_topic, message_size};
    use crate::Message;

    #[test]
    fn topic_names_are_checked_with_reason() {
        assert!(check_topic("shop.orders").is_ok());
        assert!(check_topic(&"t".repeat(255)).is_ok());
        for (topic, reason) in [
            ("", "not empty"),
            (&*"t".repeat(256), "at most 255"),
            ("a b", "no spaces"),
            ("a\u{7}", "control"),
        ] {
            let error = check_topic(topic).unwrap_err().to_string();
            assert!(error.contains(reason), "{error} should say {reason}");
        }
    }

    #[test]
    fn a_message_counts_its_payload_attributes_key_and_headers() {
        let message = Message::builder("ty", "src")
            .id("id1")
            .subject("s")
            .key("kk")
            .header("h", "vv")
            .payload("text/plain", "12345")
            .build()
            .unwrap();
        assert_eq!(message_size(&message), 5 + 3 + 3 + 2 + 1 + 10 + 2 + 3);
    }
}
