//! The CloudEvents Kafka protocol binding in binary content mode: every
//! attribute a `ce_` record header (`ce_specversion`, `ce_id`,
//! `ce_source`, `ce_type`, `ce_time`, `ce_subject`), `datacontenttype`
//! the `content-type` header, the key the record key (the partitioning
//! extension's `partitionkey`), the payload the record value; header
//! values are UTF-8. plexus's own headers travel as record headers of
//! their own names; other `ce_` headers (extension attributes), read,
//! become headers without the prefix.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use plexus_core::message::{SPEC_VERSION, format_time, parse_time};
use plexus_core::{Message, MessageParts};
use rdkafka::message::{Header, OwnedHeaders};

/// The headers the binding itself uses; a message's own header may not
/// take one of these names.
const RESERVED: [&str; 7] = [
    "ce_specversion",
    "ce_id",
    "ce_source",
    "ce_type",
    "ce_time",
    "ce_subject",
    "content-type",
];

/// The type of a record that carries no CloudEvent.
pub(crate) const PLAIN_TYPE: &str = "org.apache.kafka.record";

/// A message as a Kafka record's headers, and the record's size (key,
/// header names and values, value).
#[derive(Debug)]
pub(crate) struct Encoded {
    pub(crate) headers: OwnedHeaders,
    pub(crate) size: usize,
}

/// Encodes `message`'s attributes and headers; an error names a header of
/// the message that takes a name the binding reserves.
pub(crate) fn encode(message: &Message) -> Result<Encoded, String> {
    let time = format_time(message.time());
    let mut size = message.payload().len() + message.key().map_or(0, str::len);
    let mut headers = OwnedHeaders::new_with_capacity(7 + message.headers().len());
    let mut put = |headers: OwnedHeaders, name: &str, value: &str| {
        size += name.len() + value.len();
        headers.insert(Header {
            key: name,
            value: Some(value.as_bytes()),
        })
    };
    headers = put(headers, "ce_specversion", SPEC_VERSION);
    headers = put(headers, "ce_id", message.id());
    headers = put(headers, "ce_source", message.source());
    headers = put(headers, "ce_type", message.ty());
    headers = put(headers, "ce_time", &time);
    if let Some(subject) = message.subject() {
        headers = put(headers, "ce_subject", subject);
    }
    if let Some(content_type) = message.data_content_type() {
        headers = put(headers, "content-type", content_type);
    }
    for (name, value) in message.headers() {
        if RESERVED.contains(&name.as_str()) || name.starts_with("ce_") {
            return Err(format!(
                "message `{}` has a header `{name}`, a name the Kafka binding keeps for itself \
                 (`ce_*` and `content-type`); rename it",
                message.id()
            ));
        }
        headers = put(headers, name, value);
    }
    Ok(Encoded { headers, size })
}

/// Where a record was read, for the attributes of a record without a
/// CloudEvent and for messages.
pub(crate) struct Origin<'a> {
    pub(crate) topic: &'a str,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    /// The record's timestamp, milliseconds since the epoch.
    pub(crate) timestamp: Option<i64>,
}

/// Decodes a record: in binary content mode when it has a `ce_id`
/// header; otherwise (a plain Kafka record) as a message of type
/// `org.apache.kafka.record` from `/kafka/TOPIC`, id
/// `TOPIC-PARTITION-OFFSET`, its headers kept. The error says what is
/// wrong with the record.
pub(crate) fn decode<'h>(
    headers: impl Iterator<Item = Header<'h, &'h [u8]>>,
    key: Option<&[u8]>,
    payload: Option<&[u8]>,
    origin: &Origin<'_>,
) -> Result<Message, String> {
    let mut read: BTreeMap<String, String> = BTreeMap::new();
    for header in headers {
        let value = std::str::from_utf8(header.value.unwrap_or_default())
            .map_err(|e| format!("header `{}` is not UTF-8: {e}", header.key))?;
        read.insert(header.key.to_ascii_lowercase(), value.to_owned());
    }
    let key = key
        .map(|key| {
            std::str::from_utf8(key)
                .map(str::to_owned)
                .map_err(|e| format!("the record key is not UTF-8: {e}"))
        })
        .transpose()?
        .filter(|key| !key.is_empty());
    let published = origin
        .timestamp
        .and_then(|millis| u64::try_from(millis).ok())
        .map_or(UNIX_EPOCH, |millis| {
            UNIX_EPOCH + Duration::from_millis(millis)
        });
    let payload = Bytes::copy_from_slice(payload.unwrap_or_default());
    let binary = read.contains_key("ce_id");
    let mut take = |name: &str| read.remove(name);
    let mut parts = if binary {
        if let Some(version) = take("ce_specversion")
            && version != SPEC_VERSION
        {
            return Err(format!(
                "ce_specversion is `{version}`; plexus reads {SPEC_VERSION}"
            ));
        }
        let required = |value: Option<String>, name: &str| {
            value.ok_or_else(|| format!("ce_id is set but {name} is missing"))
        };
        MessageParts {
            id: required(take("ce_id"), "ce_id")?,
            source: required(take("ce_source"), "ce_source")?,
            ty: required(take("ce_type"), "ce_type")?,
            subject: take("ce_subject"),
            time: match take("ce_time") {
                Some(time) => parse_time(&time).map_err(|e| format!("ce_time: {e}"))?,
                None => published,
            },
            data_content_type: take("content-type"),
            key,
            headers: BTreeMap::new(),
            payload,
        }
    } else {
        MessageParts {
            id: format!("{}-{}-{}", origin.topic, origin.partition, origin.offset),
            source: format!("/kafka/{}", origin.topic),
            ty: PLAIN_TYPE.to_owned(),
            subject: None,
            time: published,
            data_content_type: take("content-type"),
            key,
            headers: BTreeMap::new(),
            payload,
        }
    };
    // Other CloudEvents extension attributes become headers of their own
    // names (plexus headers take no `ce_` prefix).
    parts.headers = read
        .into_iter()
        .map(|(name, value)| match name.strip_prefix("ce_") {
            Some(extension) => (extension.to_owned(), value),
            None => (name, value),
        })
        .collect();
    Message::from_parts(parts).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use bytes::Bytes;
    use plexus_core::Message;
    use rdkafka::message::{Header, Headers, OwnedHeaders};

    use super::{Origin, decode, encode};

    const ORIGIN: Origin<'static> = Origin {
        topic: "t",
        partition: 2,
        offset: 7,
        timestamp: Some(1_000),
    };

    fn read(headers: &OwnedHeaders, key: Option<&str>, payload: &[u8]) -> Result<Message, String> {
        decode(
            headers.iter(),
            key.map(str::as_bytes),
            Some(payload),
            &ORIGIN,
        )
    }

    #[test]
    fn every_attribute_key_and_header_round_trips() {
        let message = Message::builder("shop.order.placed", "/shop/orders")
            .subject("order 42 \"big\" 100%")
            .key("customer-7")
            .header("traceparent", "00-abc-def-01")
            .header("x-tenant", "acmé")
            .header("x-empty", "")
            .time(UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456))
            .payload("application/json", Bytes::from_static(b"{\"total\":12}"))
            .build()
            .unwrap();
        let encoded = encode(&message).unwrap();
        assert!(encoded.size > message.payload().len() + 100);
        let got = read(&encoded.headers, message.key(), message.payload()).unwrap();
        assert_eq!(got, message);
        let subject = encoded.headers.iter().find(|h| h.key == "ce_subject");
        assert_eq!(
            subject.and_then(|h| h.value),
            Some("order 42 \"big\" 100%".as_bytes())
        );
    }

    #[test]
    fn a_plain_record_is_read_with_fallback_attributes() {
        let headers = OwnedHeaders::new().insert(Header {
            key: "x-a",
            value: Some("b"),
        });
        let message = read(&headers, Some("k"), b"hi").unwrap();
        assert_eq!(
            (message.id(), message.source(), message.ty(), message.key()),
            ("t-2-7", "/kafka/t", super::PLAIN_TYPE, Some("k"))
        );
        assert_eq!(message.header("x-a"), Some("b"));
        assert_eq!(message.time(), UNIX_EPOCH + Duration::from_secs(1));
    }

    #[test]
    fn reserved_names_and_bad_attributes_are_refused() {
        let message = Message::builder("t", "/s")
            .header("content-type", "x")
            .build()
            .unwrap();
        assert!(encode(&message).unwrap_err().contains("keeps for itself"));
        let mut headers = OwnedHeaders::new()
            .insert(Header {
                key: "ce_id",
                value: Some("1"),
            })
            .insert(Header {
                key: "ce_type",
                value: Some("t"),
            });
        let missing = read(&headers, None, b"");
        assert!(missing.unwrap_err().contains("ce_source is missing"));
        headers = headers
            .insert(Header {
                key: "ce_source",
                value: Some("/s"),
            })
            .insert(Header {
                key: "ce_traceparent",
                value: Some("00-abc-def-01"),
            });
        let extended = read(&headers, None, b"").unwrap();
        assert_eq!(extended.header("traceparent"), Some("00-abc-def-01"));
        let bad_time = headers.clone().insert(Header {
            key: "ce_time",
            value: Some("yesterday"),
        });
        assert!(read(&bad_time, None, b"").unwrap_err().contains("ce_time"));
        let not_utf8 = headers.clone().insert(Header {
            key: "x-bin",
            value: Some(&[0xff_u8, 0xfe][..]),
        });
        assert!(
            read(&not_utf8, None, b"")
                .unwrap_err()
                .contains("not UTF-8")
        );
        let old = headers.insert(Header {
            key: "ce_specversion",
            value: Some("0.3"),
        });
        assert!(read(&old, None, b"").unwrap_err().contains("0.3"));
    }
}
