//! The CloudEvents NATS binding in binary content mode: every attribute a
//! `ce-` header (`ce-id`, `ce-source`, `ce-type`, `ce-specversion`,
//! `ce-time`, `ce-subject`), the key the partitioning extension's
//! `ce-partitionkey`, `datacontenttype` the `content-type` header, the
//! payload the body; plexus's own headers travel as headers of their own
//! names (and other `ce-` extension attributes, read, become headers
//! without the prefix). Values are percent-encoded (space, `"`, `%`, controls and
//! non-ASCII), as the binding asks. With deduplication on
//! ([`NatsConfig::deduplicate`](crate::NatsConfig)), `Nats-Msg-Id`
//! carries the topic, id and source, so that the stream drops a retried
//! publish within its duplicate window (the stream's detection spans all
//! its subjects: the same message forwarded to another topic, say a
//! dead-letter one, is not a duplicate).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::SystemTime;

use async_nats::{HeaderMap, HeaderName};
use bytes::Bytes;
use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};
use plexus_core::message::{SPEC_VERSION, parse_time};
use plexus_core::{Message, MessageParts};

/// What a header value encodes beside controls and non-ASCII.
const VALUE: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'%');

/// The headers the binding itself uses; a message's own header may not
/// take one of these names.
const RESERVED: [&str; 8] = [
    "ce-specversion",
    "ce-id",
    "ce-source",
    "ce-type",
    "ce-time",
    "ce-subject",
    "ce-partitionkey",
    "content-type",
];

/// The stream's duplicate-detection header.
const MSG_ID: &str = "Nats-Msg-Id";

/// A message as NATS headers and body, and its size on the wire (header
/// names and values plus the body).
#[derive(Debug)]
pub(crate) struct Encoded {
    pub(crate) headers: HeaderMap,
    pub(crate) payload: Bytes,
}

/// Calls `put` with every header `message` has on the wire, its value
/// before percent-encoding (`ce-time` is `time`, the message's time as
/// [`format_time`](plexus_core::message::format_time) writes it; a `Nats-Msg-Id` when `dedupe_topic` names the
/// topic); an error names a header of the message that takes a name the
/// binding reserves.
fn headers(
    message: &Message,
    time: &str,
    dedupe_topic: Option<&str>,
    mut put: impl FnMut(HeaderName, &str),
) -> Result<(), String> {
    put(HeaderName::from_static("ce-specversion"), SPEC_VERSION);
    put(HeaderName::from_static("ce-id"), message.id());
    put(HeaderName::from_static("ce-source"), message.source());
    put(HeaderName::from_static("ce-type"), message.ty());
    put(HeaderName::from_static("ce-time"), time);
    if let Some(subject) = message.subject() {
        put(HeaderName::from_static("ce-subject"), subject);
    }
    if let Some(key) = message.key() {
        put(HeaderName::from_static("ce-partitionkey"), key);
    }
    if let Some(content_type) = message.data_content_type() {
        put(HeaderName::from_static("content-type"), content_type);
    }
    if let Some(topic) = dedupe_topic {
        put(
            HeaderName::from_static(MSG_ID),
            &format!("{topic} {} {}", message.source(), message.id()),
        );
    }
    for (name, value) in message.headers() {
        if RESERVED.contains(&name.as_str()) || name.starts_with("nats-") {
            return Err(format!(
                "message `{}` has a header `{name}`, a name the NATS binding keeps for itself \
                 (the CloudEvents attributes, `content-type` and `nats-*`); rename it",
                message.id()
            ));
        }
        let name = name
            .parse::<HeaderName>()
            .map_err(|e| format!("message `{}`: header `{name}`: {e}", message.id()))?;
        put(name, value);
    }
    Ok(())
}

/// The bytes `message` takes on the wire as [`encode`] encodes it (what
/// the server's `max_payload` bounds), checked as `encode` checks it,
/// without building it: a batch is checked whole before its first
/// message is encoded and sent. `time` is the message's time as
/// [`format_time`](plexus_core::message::format_time) writes it, which `encode` takes too.
pub(crate) fn size(
    message: &Message,
    time: &str,
    dedupe_topic: Option<&str>,
) -> Result<usize, String> {
    let mut size = message.payload().len();
    headers(message, time, dedupe_topic, |name, value| {
        size += AsRef::<str>::as_ref(&name).len() + encoded_len(value) + 4;
    })?;
    Ok(size)
}

/// Whether the binding percent-encodes byte `b` of a header value: what
/// [`VALUE`] names, and every byte of a non-ASCII character.
fn percent_encoded(b: u8) -> bool {
    b < 0x20 || b == 0x7f || b == b' ' || b == b'"' || b == b'%' || !b.is_ascii()
}

/// The length of `value` percent-encoded (an encoded byte takes three).
fn encoded_len(value: &str) -> usize {
    value.len() + 2 * value.bytes().filter(|&b| percent_encoded(b)).count()
}

/// Encodes `message` (see [`headers`]; `time` from [`format_time`](plexus_core::message::format_time)).
pub(crate) fn encode(
    message: &Message,
    time: &str,
    dedupe_topic: Option<&str>,
) -> Result<Encoded, String> {
    let mut encoded = HeaderMap::new();
    headers(message, time, dedupe_topic, |name, value| {
        let value = if value.bytes().any(percent_encoded) {
            utf8_percent_encode(value, VALUE).to_string()
        } else {
            value.to_owned()
        };
        encoded.insert(name, value);
    })?;
    Ok(Encoded {
        headers: encoded,
        payload: message.payload().clone(),
    })
}

/// Decodes a message received on the stream: in binary content mode when
/// it has a `ce-id` header; otherwise (a plain NATS message) as a message
/// of type `io.nats.message` from `/nats/SUBJECT` with the id `fallback_id` makes,
/// its headers kept. `published` is the time when it has no `ce-time`.
pub(crate) fn decode(
    headers: Option<&HeaderMap>,
    payload: Bytes,
    subject: &str,
    fallback_id: impl FnOnce() -> String,
    published: SystemTime,
) -> Result<Message, String> {
    // The binding's own headers land in their slots (matched and held
    // without allocating: a value is copied only where the message keeps
    // it); any other becomes a header of the message.
    let mut slots: [Option<Cow<'_, str>>; RESERVED.len()] = Default::default();
    let mut extra: BTreeMap<String, String> = BTreeMap::new();
    for (name, values) in headers.into_iter().flat_map(HeaderMap::iter) {
        let name: &str = name.as_ref();
        if name.eq_ignore_ascii_case(MSG_ID) {
            continue;
        }
        let Some(value) = values.last() else {
            continue;
        };
        // Borrowed unless it has something to decode (a byte loop: these
        // values are short, where percent-decoding's own scan and UTF-8
        // check cost more).
        let value = value.as_str();
        let value = if value.bytes().any(|b| b == b'%') {
            percent_decode_str(value)
                .decode_utf8()
                .map_err(|e| format!("header `{name}` is not UTF-8 once percent-decoded: {e}"))?
        } else {
            Cow::Borrowed(value)
        };
        match RESERVED.iter().position(|r| name.eq_ignore_ascii_case(r)) {
            Some(slot) => slots[slot] = Some(value),
            None => {
                // Other CloudEvents extension attributes become headers of
                // their own names (plexus headers take no `ce-` prefix).
                let name = name.to_ascii_lowercase();
                let name = match name.strip_prefix("ce-") {
                    Some(extension) => extension.to_owned(),
                    None => name,
                };
                extra.insert(name, value.into_owned());
            }
        }
    }
    let [
        specversion,
        id,
        source,
        ty,
        time,
        ce_subject,
        key,
        data_content_type,
    ] = slots;
    let parts = match id {
        Some(id) => {
            if let Some(version) = specversion
                && version != SPEC_VERSION
            {
                return Err(format!(
                    "ce-specversion is `{version}`; plexus reads {SPEC_VERSION}"
                ));
            }
            let required = |value: Option<Cow<'_, str>>, name: &str| {
                value
                    .map(Cow::into_owned)
                    .ok_or_else(|| format!("ce-id is set but {name} is missing"))
            };
            MessageParts {
                id: id.into_owned(),
                source: required(source, "ce-source")?,
                ty: required(ty, "ce-type")?,
                subject: ce_subject.map(Cow::into_owned),
                time: match time {
                    Some(time) => parse_time(&time).map_err(|e| format!("ce-time: {e}"))?,
                    None => published,
                },
                data_content_type: data_content_type.map(Cow::into_owned),
                key: key.map(Cow::into_owned),
                headers: extra,
                payload,
            }
        }
        None => {
            // A plain NATS message: the binding's other headers, if any,
            // stay headers of their own names.
            for (name, value) in [
                ("specversion", specversion),
                ("source", source),
                ("type", ty),
                ("time", time),
                ("subject", ce_subject),
                ("partitionkey", key),
            ] {
                if let Some(value) = value {
                    extra.insert(name.to_owned(), value.into_owned());
                }
            }
            MessageParts {
                id: fallback_id(),
                source: format!("/nats/{subject}"),
                ty: "io.nats.message".to_owned(),
                subject: None,
                time: published,
                data_content_type: data_content_type.map(Cow::into_owned),
                key: None,
                headers: extra,
                payload,
            }
        }
    };
    Message::from_parts(parts).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use bytes::Bytes;
    use plexus_core::Message;
    use plexus_core::message::format_time;

    use super::{VALUE, decode, encode, encoded_len, size};

    fn received(message: &Message) -> Message {
        let encoded = encode(message, &format_time(message.time()), Some("t")).unwrap();
        decode(
            Some(&encoded.headers),
            encoded.payload,
            "plexus.t",
            || "unused".to_owned(),
            UNIX_EPOCH,
        )
        .unwrap()
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
        let encoded = encode(&message, &format_time(message.time()), Some("t")).unwrap();
        let subject = encoded.headers.get("ce-subject").unwrap().as_str();
        assert_eq!(subject, "order%2042%20%22big%22%20100%25");
        // What `size` counts is what `encode` puts on the wire.
        let on_the_wire: usize = encoded
            .headers
            .iter()
            .map(|(name, values)| {
                let name: &str = name.as_ref();
                values
                    .iter()
                    .map(|v| name.len() + v.as_str().len() + 4)
                    .sum::<usize>()
            })
            .sum();
        assert_eq!(
            size(&message, &format_time(message.time()), Some("t")).unwrap(),
            message.payload().len() + on_the_wire
        );
    }

    #[test]
    fn the_encoded_length_is_what_percent_encoding_makes() {
        for value in [
            "",
            "plain-ascii_1.2/3",
            "with space and \"quotes\" and 100%",
            "tab\tnew\nline\u{7f}",
            "acmé ünïcode 日本",
        ] {
            let made = percent_encoding::utf8_percent_encode(value, VALUE).to_string();
            assert_eq!(encoded_len(value), made.len(), "{value:?}");
        }
    }

    #[test]
    fn a_plain_nats_message_is_read_with_fallback_attributes() {
        let message = decode(
            None,
            Bytes::from_static(b"hi"),
            "plexus.t",
            || "PLEXUS-7".to_owned(),
            UNIX_EPOCH,
        )
        .unwrap();
        assert_eq!(
            (message.id(), message.source(), message.ty()),
            ("PLEXUS-7", "/nats/plexus.t", "io.nats.message")
        );
    }

    #[test]
    fn reserved_names_and_bad_attributes_are_refused() {
        let message = Message::builder("t", "/s")
            .header("content-type", "x")
            .build()
            .unwrap();
        assert!(
            encode(&message, &format_time(message.time()), Some("t"))
                .unwrap_err()
                .contains("keeps for itself")
        );
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("ce-id", "1");
        headers.insert("ce-type", "t");
        let missing = decode(Some(&headers), Bytes::new(), "s", String::new, UNIX_EPOCH);
        assert!(missing.unwrap_err().contains("ce-source is missing"));
        headers.insert("ce-source", "/s");
        headers.insert("ce-traceparent", "00-abc-def-01");
        let extended = decode(Some(&headers), Bytes::new(), "s", String::new, UNIX_EPOCH);
        assert_eq!(
            extended.unwrap().header("traceparent"),
            Some("00-abc-def-01")
        );
        headers.insert("ce-specversion", "0.3");
        let old = decode(Some(&headers), Bytes::new(), "s", String::new, UNIX_EPOCH);
        assert!(old.unwrap_err().contains("0.3"));
    }
}
