//! Topics as routing keys of the topic exchange, groups as queue names.

use plexus_core::bus::{BusError, check_topic};

/// The longest queue name RabbitMQ takes, bytes.
const MAX_QUEUE_NAME: usize = 255;

/// Checks that `topic` can be a routing key of the topic exchange:
/// plexus's rules, and no `*` or `#` (the exchange's wildcards, which a
/// binding would read as patterns and so leak other topics into it).
pub(crate) fn check_routing_key(topic: &str) -> Result<(), BusError> {
    check_topic(topic)?;
    if topic.contains(['*', '#']) {
        return Err(BusError::InvalidTopic {
            topic: topic.chars().take(64).collect(),
            reason: "a RabbitMQ topic has no `*` or `#` (the topic exchange's wildcards)"
                .to_owned(),
        });
    }
    Ok(())
}

/// The durable queue of `group` on `topic`: `PREFIX.TOPIC.GROUP` when
/// that is short and plain enough, otherwise a readable part and a hash
/// of both names, so that distinct pairs never share a queue.
pub(crate) fn group_queue(prefix: &str, topic: &str, group: &str) -> String {
    let plain = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
    };
    let name = format!("{prefix}.{topic}.{group}");
    if name.len() <= MAX_QUEUE_NAME && !topic.contains('.') && plain(topic) && plain(group) {
        return name;
    }
    let readable: String = format!("{topic}.{group}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(96)
        .collect();
    format!(
        "{prefix}.{readable}~{:016x}",
        fnv1a(&[topic.as_bytes(), group.as_bytes()])
    )
}

/// The queue of a subscription without a group: `PREFIX.~private.` and a
/// random part.
pub(crate) fn private_queue(prefix: &str) -> String {
    let random = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let counter = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(
        "{prefix}.~private.{:016x}",
        fnv1a(&[
            &random.to_le_bytes(),
            &counter.to_le_bytes(),
            &std::process::id().to_le_bytes()
        ])
    )
}

static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// 64-bit FNV-1a over `parts`, each followed by a zero byte: stable across
/// processes and versions (a group's queue name must be).
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
    use super::{check_routing_key, group_queue, private_queue};

    #[test]
    fn topics_with_wildcards_or_bad_names_are_refused() {
        assert!(check_routing_key("shop.orders").is_ok());
        for topic in ["a.*", "a.#", "#", "", "a b"] {
            let error = check_routing_key(topic).unwrap_err().to_string();
            assert!(error.contains("invalid topic"), "{topic}: {error}");
        }
    }

    #[test]
    fn group_queues_are_readable_short_and_distinct() {
        assert_eq!(
            group_queue("plexus", "orders", "email"),
            "plexus.orders.email"
        );
        let dotted = group_queue("plexus", "shop.orders", "email senders");
        assert!(
            dotted.starts_with("plexus.shop.orders.email_senders~"),
            "{dotted}"
        );
        assert_ne!(
            group_queue("p", "a.b", "c"),
            group_queue("p", "a", "b.c"),
            "a dot may not make two pairs one queue"
        );
        assert_eq!(group_queue("p", "t.x", "g"), group_queue("p", "t.x", "g"));
        assert!(group_queue("p", &"t".repeat(255), &"g".repeat(200)).len() <= 255);
        assert_ne!(private_queue("p"), private_queue("p"));
    }
}
