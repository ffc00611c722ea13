//! The CloudEvents AMQP binding in binary content mode, on AMQP 0.9.1:
//! every attribute an application property (a header of the message's
//! header table) named `cloudEvents:ATTRIBUTE` (`cloudEvents:id`,
//! `cloudEvents:source`, `cloudEvents:type`, `cloudEvents:specversion`,
//! `cloudEvents:time` as an RFC 3339 string, `cloudEvents:subject`), the
//! key the partitioning extension's `cloudEvents:partitionkey`,
//! `datacontenttype` the `content-type` property, the payload the body;
//! plexus's own headers travel as headers of their own names, string
//! valued. Reading also takes the binding's `cloudEvents_` prefix (for
//! clients that cannot write `:`) and other `cloudEvents:` extension
//! attributes (they become headers without the prefix). Messages are
//! persistent (delivery mode 2).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use plexus_core::message::{SPEC_VERSION, format_time, parse_time};
use plexus_core::{Message, MessageParts};

/// The prefix the binding writes.
const PREFIX: &str = "cloudEvents:";
/// The prefix the binding also allows.
const ALT_PREFIX: &str = "cloudEvents_";
/// Persistent delivery mode.
const PERSISTENT: u8 = 2;
/// How many deliveries of a message a quorum queue counts before this
/// one (absent on the first).
pub(crate) const DELIVERY_COUNT: &str = "x-delivery-count";

/// Headers the broker writes itself; a message's own header may not take
/// these names, and reading leaves them out.
fn broker_header(name: &str) -> bool {
    name == DELIVERY_COUNT
        || name == "x-received-from"
        || name.starts_with("x-death")
        || name.starts_with("x-first-death-")
        || name.starts_with("x-last-death-")
}

fn binding_header(name: &str) -> bool {
    let lower = |p: &str| {
        name.len() >= p.len()
            && name.is_char_boundary(p.len())
            && name[..p.len()].eq_ignore_ascii_case(p)
    };
    lower(PREFIX) || lower(ALT_PREFIX)
}

/// A message's AMQP properties and its size as the limit counts it
/// (header names and values plus the body).
#[derive(Debug)]
pub(crate) struct Encoded {
    pub(crate) properties: BasicProperties,
    pub(crate) size: usize,
}

/// Encodes `message`'s attributes, key and headers; an error names what
/// the binding cannot carry.
pub(crate) fn encode(message: &Message) -> Result<Encoded, String> {
    let mut headers = FieldTable::default();
    let mut size = message.payload().len();
    let mut put = |name: &str, value: &str| {
        size += name.len() + value.len();
        match ShortString::try_new(name) {
            Ok(name) => {
                headers.insert(name, AMQPValue::LongString(LongString::from(value)));
                Ok(())
            }
            Err(_) => Err(format!(
                "message `{}` has a header name over 255 bytes",
                message.id()
            )),
        }
    };
    put("cloudEvents:specversion", SPEC_VERSION)?;
    put("cloudEvents:id", message.id())?;
    put("cloudEvents:source", message.source())?;
    put("cloudEvents:type", message.ty())?;
    put("cloudEvents:time", &format_time(message.time()))?;
    if let Some(subject) = message.subject() {
        put("cloudEvents:subject", subject)?;
    }
    if let Some(key) = message.key() {
        put("cloudEvents:partitionkey", key)?;
    }
    for (name, value) in message.headers() {
        if binding_header(name) || broker_header(name) {
            return Err(format!(
                "message `{}` has a header `{name}`, a name the AMQP binding or RabbitMQ keeps \
                 for itself (`cloudEvents:*`, `cloudEvents_*`, `x-death*`, `x-delivery-count`); \
                 rename it",
                message.id()
            ));
        }
        put(name, value)?;
    }
    let mut properties = BasicProperties::default()
        .with_delivery_mode(PERSISTENT)
        .with_headers(headers);
    if let Some(content_type) = message.data_content_type() {
        let content_type = ShortString::try_new(content_type).map_err(|_| {
            format!(
                "message `{}` has a datacontenttype over 255 bytes, more than AMQP's \
                 content-type property holds",
                message.id()
            )
        })?;
        size += content_type.as_str().len();
        properties = properties.with_content_type(content_type);
    }
    Ok(Encoded { properties, size })
}

/// Which delivery to its queue this is: 1, or one more than the quorum
/// queue's `x-delivery-count`.
pub(crate) fn attempt(properties: &BasicProperties) -> u32 {
    let count = properties
        .headers()
        .as_ref()
        .and_then(|headers| headers.inner().get(DELIVERY_COUNT))
        .and_then(integer)
        .unwrap_or(0);
    u32::try_from(count.saturating_add(1)).unwrap_or(u32::MAX)
}

fn integer(value: &AMQPValue) -> Option<u64> {
    match value {
        AMQPValue::ShortShortInt(n) => u64::try_from(*n).ok(),
        AMQPValue::ShortShortUInt(n) => Some(u64::from(*n)),
        AMQPValue::ShortInt(n) => u64::try_from(*n).ok(),
        AMQPValue::ShortUInt(n) => Some(u64::from(*n)),
        AMQPValue::LongInt(n) => u64::try_from(*n).ok(),
        AMQPValue::LongUInt(n) => Some(u64::from(*n)),
        AMQPValue::LongLongInt(n) => u64::try_from(*n).ok(),
        AMQPValue::Timestamp(n) => Some(*n),
        _ => None,
    }
}

/// A header value as text: strings as they are (UTF-8), numbers and
/// booleans written out; `None` for tables, arrays and byte arrays.
fn text(value: &AMQPValue) -> Option<Result<String, String>> {
    let utf8 =
        |bytes: &[u8]| String::from_utf8(bytes.to_vec()).map_err(|e| format!("not UTF-8: {e}"));
    Some(match value {
        AMQPValue::LongString(s) => utf8(s.as_bytes()),
        AMQPValue::ShortString(s) => Ok(s.as_str().to_owned()),
        AMQPValue::Boolean(b) => Ok(b.to_string()),
        AMQPValue::Float(f) => Ok(f.to_string()),
        AMQPValue::Double(f) => Ok(f.to_string()),
        other => Ok(integer(other)?.to_string()),
    })
}

/// Decodes a delivered message: in binary content mode when it has a
/// `cloudEvents:id` (or `cloudEvents_id`) header; otherwise (a plain
/// AMQP message) as a message of type `org.amqp.message` from
/// `/amqp/EXCHANGE/ROUTING_KEY` with the `message-id` property as id (a
/// new id without one), its string headers kept.
pub(crate) fn decode(
    properties: &BasicProperties,
    payload: Bytes,
    exchange: &str,
    routing_key: &str,
) -> Result<Message, String> {
    let mut attributes: BTreeMap<String, String> = BTreeMap::new();
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut time_value: Option<SystemTime> = None;
    if let Some(table) = properties.headers() {
        for (name, value) in table {
            let name = name.as_str();
            if broker_header(name) {
                continue;
            }
            if binding_header(name) {
                let attribute = name[PREFIX.len()..].to_ascii_lowercase();
                if attribute == "time"
                    && let AMQPValue::Timestamp(seconds) = value
                {
                    time_value = Some(UNIX_EPOCH + Duration::from_secs(*seconds));
                    continue;
                }
                match text(value) {
                    Some(Ok(text)) => {
                        attributes.insert(attribute, text);
                    }
                    Some(Err(e)) => return Err(format!("header `{name}` is {e}")),
                    None => return Err(format!("header `{name}` is not a string")),
                }
            } else if let Some(text) = text(value) {
                let text = text.map_err(|e| format!("header `{name}` is {e}"))?;
                // plexus header names are lowercase letters, digits, `-`,
                // `_` and `.`: others' names are lowercased, and those
                // still not such a name left out.
                let name = name.to_ascii_lowercase();
                if name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
                {
                    headers.insert(name, text);
                }
            }
        }
    }
    let content_type = properties
        .content_type()
        .as_ref()
        .map(|c| c.as_str().to_owned());
    let mut parts = if attributes.contains_key("id") {
        if let Some(version) = attributes.remove("specversion")
            && version != SPEC_VERSION
        {
            return Err(format!(
                "cloudEvents:specversion is `{version}`; plexus reads {SPEC_VERSION}"
            ));
        }
        let mut required = |name: &str| {
            attributes
                .remove(name)
                .ok_or_else(|| format!("cloudEvents:id is set but cloudEvents:{name} is missing"))
        };
        let id = required("id")?;
        let source = required("source")?;
        let ty = required("type")?;
        let time = match attributes.remove("time") {
            Some(time) => parse_time(&time).map_err(|e| format!("cloudEvents:time: {e}"))?,
            None => time_value.unwrap_or_else(SystemTime::now),
        };
        MessageParts {
            id,
            source,
            ty,
            subject: attributes.remove("subject"),
            time,
            data_content_type: content_type,
            key: attributes.remove("partitionkey"),
            headers: BTreeMap::new(),
            payload,
        }
    } else {
        let plain = Message::builder(
            "org.amqp.message",
            format!("/amqp/{exchange}/{routing_key}"),
        )
        .build()
        .map_err(|e| e.to_string())?;
        let mut parts = plain.into_parts();
        if let Some(id) = properties.message_id() {
            parts.id = id.as_str().to_owned();
        }
        if let Some(seconds) = properties.timestamp() {
            parts.time = UNIX_EPOCH + Duration::from_secs(*seconds);
        }
        parts.data_content_type = content_type;
        parts.payload = payload;
        parts
    };
    // Other CloudEvents extension attributes become headers of their own
    // names.
    headers.extend(attributes);
    parts.headers = headers;
    Message::from_parts(parts).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use bytes::Bytes;
    use lapin::BasicProperties;
    use lapin::types::{AMQPValue, FieldTable, LongString};
    use plexus_core::Message;

    use super::{attempt, decode, encode};

    fn received(message: &Message) -> Message {
        let encoded = encode(message).unwrap();
        decode(
            &encoded.properties,
            message.payload().clone(),
            "plexus",
            "t",
        )
        .unwrap()
    }

    fn table(pairs: &[(&str, &str)]) -> FieldTable {
        let mut table = FieldTable::default();
        for (name, value) in pairs {
            table.insert(
                (*name).into(),
                AMQPValue::LongString(LongString::from(*value)),
            );
        }
        table
    }

    #[test]
    fn every_attribute_key_and_header_round_trips() {
        let message = Message::builder("shop.order.placed", "/shop/orders")
            .subject("order 42 \"big\" 100%")
            .key("customer-7")
            .header("traceparent", "00-abc-def-01")
            .header("x-tenant", "acmé")
            .time(UNIX_EPOCH + Duration::from_millis(1_700_000_000_123))
            .payload("application/json", Bytes::from_static(b"{\"total\":12}"))
            .build()
            .unwrap();
        assert_eq!(received(&message), message);
        let encoded = encode(&message).unwrap();
        let headers = encoded.properties.headers().clone().unwrap();
        assert_eq!(
            headers.inner().get("cloudEvents:partitionkey"),
            Some(&AMQPValue::LongString("customer-7".into()))
        );
        assert_eq!(encoded.properties.delivery_mode(), &Some(2));
        assert!(encoded.size > message.payload().len() + 100);
    }

    #[test]
    fn the_underscore_prefix_and_broker_headers_are_read() {
        let mut headers = table(&[
            ("cloudEvents_id", "1"),
            ("cloudEvents_source", "/s"),
            ("cloudEvents_type", "t"),
            ("cloudEvents_traceparent", "00-abc"),
            ("x-first-death-queue", "q"),
        ]);
        headers.insert("x-delivery-count".into(), AMQPValue::LongLongInt(2));
        let properties = BasicProperties::default().with_headers(headers);
        let message = decode(&properties, Bytes::new(), "plexus", "t").unwrap();
        assert_eq!(
            (message.id(), message.source(), message.ty()),
            ("1", "/s", "t")
        );
        assert_eq!(message.header("traceparent"), Some("00-abc"));
        assert_eq!(message.headers().len(), 1, "{:?}", message.headers());
        assert_eq!(attempt(&properties), 3);
        assert_eq!(attempt(&BasicProperties::default()), 1);
    }

    #[test]
    fn a_plain_amqp_message_is_read_with_fallback_attributes() {
        let properties = BasicProperties::default()
            .with_message_id("m-7".into())
            .with_headers(table(&[("Origin", "legacy"), ("bad name", "x")]));
        let message = decode(&properties, Bytes::from_static(b"hi"), "plexus", "orders").unwrap();
        assert_eq!(
            (message.id(), message.source(), message.ty()),
            ("m-7", "/amqp/plexus/orders", "org.amqp.message")
        );
        assert_eq!(message.header("origin"), Some("legacy"));
        assert_eq!(message.headers().len(), 1);
    }

    #[test]
    fn reserved_names_and_bad_attributes_are_refused() {
        for name in [
            "cloudevents_x",
            "x-death",
            "x-first-death-queue",
            "x-delivery-count",
        ] {
            let message = Message::builder("t", "/s")
                .header(name, "x")
                .build()
                .unwrap();
            let error = encode(&message).unwrap_err();
            assert!(error.contains("keeps for itself"), "{name}: {error}");
        }
        let long = Message::builder("t", "/s")
            .payload("a/".to_owned() + &"b".repeat(300), Bytes::new())
            .build()
            .unwrap();
        assert!(encode(&long).unwrap_err().contains("content-type"));
        let missing = table(&[("cloudEvents:id", "1"), ("cloudEvents:type", "t")]);
        let properties = BasicProperties::default().with_headers(missing);
        let error = decode(&properties, Bytes::new(), "x", "t").unwrap_err();
        assert!(error.contains("cloudEvents:source is missing"), "{error}");
        let old = table(&[
            ("cloudEvents:id", "1"),
            ("cloudEvents:source", "/s"),
            ("cloudEvents:type", "t"),
            ("cloudEvents:specversion", "0.3"),
        ]);
        let properties = BasicProperties::default().with_headers(old);
        let error = decode(&properties, Bytes::new(), "x", "t").unwrap_err();
        assert!(error.contains("0.3"), "{error}");
        let mut bad = table(&[("cloudEvents:source", "/s"), ("cloudEvents:type", "t")]);
        bad.insert(
            "cloudEvents:id".into(),
            AMQPValue::LongString(vec![0xff, 0xfe].into()),
        );
        let properties = BasicProperties::default().with_headers(bad);
        let error = decode(&properties, Bytes::new(), "x", "t").unwrap_err();
        assert!(error.contains("UTF-8"), "{error}");
    }
}
