use std::time::{Duration, SystemTime};

use super::*;
use crate::codec::{JsonCodec, ProtobufCodec};
use crate::error::ErrorKind;

fn valid() -> MessageBuilder {
    Message::builder("shop.order.placed", "/shop/orders")
}

#[test]
fn builder_fills_id_time_and_keeps_attributes() {
    let before = SystemTime::now();
    let msg = valid()
        .subject("order-1")
        .key("customer-1")
        .header("tenant", "acme")
        .payload("text/plain", "hi")
        .build()
        .unwrap();
    let id = uuid::Uuid::parse_str(msg.id()).unwrap();
    assert_eq!(id.get_version_num(), 7);
    assert!(msg.time() >= before);
    assert_eq!(msg.ty(), "shop.order.placed");
    assert_eq!(msg.source(), "/shop/orders");
    assert_eq!(msg.subject(), Some("order-1"));
    assert_eq!(msg.key(), Some("customer-1"));
    assert_eq!(msg.header("tenant"), Some("acme"));
    assert_eq!(msg.data_content_type(), Some("text/plain"));
    assert_eq!(msg.payload().as_ref(), b"hi");
}

#[test]
fn ids_are_unique_and_time_ordered() {
    let a = valid().build().unwrap();
    let b = valid().build().unwrap();
    assert_ne!(a.id(), b.id());
    assert!(a.id() < b.id(), "UUIDv7 ids sort by creation time");
}

#[test]
fn codecs_set_content_type_and_round_trip() {
    let value = serde_json::json!({"total": 12});
    let msg = valid()
        .encode(&JsonCodec::new(), &value)
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(msg.data_content_type(), Some("application/json"));
    assert_eq!(
        msg.decode(&JsonCodec::<serde_json::Value>::new()).unwrap(),
        value
    );

    let ts = prost_types_free_timestamp();
    let msg = valid()
        .encode(&ProtobufCodec::new(), &ts)
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(msg.data_content_type(), Some("application/protobuf"));
    assert_eq!(msg.decode(&ProtobufCodec::<Stamp>::new()).unwrap(), ts);
}

#[derive(Clone, PartialEq, prost::Message)]
struct Stamp {
    #[prost(int64, tag = "1")]
    seconds: i64,
}

fn prost_types_free_timestamp() -> Stamp {
    Stamp { seconds: 42 }
}

#[test]
fn missing_required_attributes_are_refused_by_name() {
    for (builder, attribute) in [
        (Message::builder("", "/src"), "type"),
        (Message::builder("t", ""), "source"),
        (valid().id(""), "id"),
        (valid().subject(""), "subject"),
        (valid().key(""), "key"),
    ] {
        let err = builder.build().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(err.to_string().contains(&format!("`{attribute}`")), "{err}");
    }
}

#[test]
fn malformed_attributes_are_refused_with_reason() {
    let cases = [
        (valid().payload("json", "{}"), "not a media type"),
        (valid().header("Tenant", "x"), "lowercase"),
        (valid().header("ce-id", "x"), "reserved"),
        (valid().header("a", "line\nbreak"), "control character"),
        (
            valid().header("a", "x".repeat(MAX_HEADER_VALUE_LEN + 1)),
            "at most",
        ),
        (
            valid().subject("x".repeat(MAX_ATTRIBUTE_LEN + 1)),
            "at most",
        ),
        (valid().key("a\u{0}b"), "control character"),
        (valid().key("a\u{7f}b"), "control character"),
        (valid().subject("é\u{85}"), "control character"),
        (valid().subject("a\u{1b}é"), "control character"),
    ];
    for (builder, needle) in cases {
        let err = builder.build().unwrap_err();
        assert!(
            err.to_string().contains(needle),
            "{err} should mention {needle}"
        );
    }
}

#[test]
fn too_many_headers_are_refused() {
    let mut b = valid();
    for i in 0..=MAX_HEADERS {
        b = b.header(format!("h{i}"), "v");
    }
    let err = b.build().unwrap_err();
    assert!(err.to_string().contains("at most 64"), "{err}");
}

#[test]
fn media_types_with_parameters_are_accepted() {
    valid()
        .payload("application/cloudevents+json; charset=utf-8", "{}")
        .build()
        .unwrap();
}

#[test]
fn parts_round_trip_through_validation() {
    let msg = valid().key("k").build().unwrap();
    let again = Message::from_parts(msg.clone().into_parts()).unwrap();
    assert_eq!(again, msg);
}

#[test]
fn time_formats_and_parses_rfc3339_with_offsets() {
    let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
    let text = format_time(t);
    assert_eq!(text, "2023-11-14T22:13:20.123Z");
    assert_eq!(parse_time(&text).unwrap(), t);
    assert_eq!(parse_time("2023-11-14T23:13:20.123+01:00").unwrap(), t);
    let err = parse_time("yesterday").unwrap_err();
    assert!(err.to_string().contains("RFC 3339"), "{err}");
}
