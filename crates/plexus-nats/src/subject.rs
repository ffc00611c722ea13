//! Topics as NATS subjects, groups as consumer names.

use plexus_core::bus::{BusError, check_topic};

/// The subject of `topic` under `prefix`: NATS subjects are dot-separated
/// non-empty tokens, `*` and `>` are wildcards; plexus also keeps them
/// ASCII, so that every client reads them alike.
pub(crate) fn subject(prefix: &str, topic: &str) -> Result<String, BusError> {
    check_topic(topic)?;
    let valid = topic.split('.').all(|token| {
        !token.is_empty()
            && token
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'*' && b != b'>')
    });
    if !valid {
        return Err(BusError::InvalidTopic {
            topic: topic.chars().take(64).collect(),
            reason: "a NATS topic is dot-separated non-empty tokens of ASCII letters, digits and \
                     punctuation other than the wildcards `*` and `>`"
                .to_owned(),
        });
    }
    Ok(format!("{prefix}.{topic}"))
}

/// The durable consumer of `group` on `topic`: a readable part (letters,
/// digits, `-`, `_`) and a hash of both names, so that distinct pairs
/// never share a consumer.
pub(crate) fn consumer_name(topic: &str, group: &str) -> String {
    let readable: String = format!("{topic}-{group}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(48)
        .collect();
    format!(
        "{readable}-{:016x}",
        fnv1a(&[topic.as_bytes(), group.as_bytes()])
    )
}

/// 64-bit FNV-1a over `parts`, each followed by a zero byte: stable across
/// processes and versions (the consumer name must be).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in parts.iter().flat_map(|part| part.iter().chain(&[0])) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::{consumer_name, subject};

    #[test]
    fn topics_become_subjects_or_a_clear_error() {
        assert_eq!(
            subject("plexus", "shop.orders").unwrap(),
            "plexus.shop.orders"
        );
        for topic in ["a..b", ".a", "a.", "a*", "a.>", "ordres-é", ""] {
            let error = subject("plexus", topic).unwrap_err().to_string();
            assert!(error.contains("invalid topic"), "{topic}: {error}");
        }
    }

    #[test]
    fn consumer_names_are_safe_and_distinct() {
        let name = consumer_name("shop.orders", "email senders");
        assert!(name.starts_with("shop_orders-email_senders-"), "{name}");
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_ne!(consumer_name("a.b", "c"), consumer_name("a_b", "c"));
        assert_ne!(consumer_name("a", "b-c"), consumer_name("a-b", "c"));
        assert_eq!(consumer_name("t", "g"), consumer_name("t", "g"));
        assert!(consumer_name(&"t".repeat(255), "g").len() <= 48 + 17);
    }
}
