//! Messages as CloudEvents JSON (structured mode), one per line.
//!
//! `specversion`, `id`, `source`, `type`, `subject`, `time`,
//! `datacontenttype`; the ordering key as `partitionkey` (the CloudEvents
//! partitioning extension); headers as a `headers` object; the payload as
//! `data` (JSON when the content type is JSON and it parses, else text
//! when it is UTF-8) or `data_base64`.

use base64::Engine as _;
use plexus_core::Message;
use plexus_core::message::format_time;
use serde_json::{Map, Value, json};

/// The message as one CloudEvents JSON object.
pub(super) fn to_json(message: &Message) -> Value {
    let mut event = Map::new();
    event.insert("specversion".into(), json!("1.0"));
    event.insert("id".into(), json!(message.id()));
    event.insert("source".into(), json!(message.source()));
    event.insert("type".into(), json!(message.ty()));
    if let Some(subject) = message.subject() {
        event.insert("subject".into(), json!(subject));
    }
    event.insert("time".into(), json!(format_time(message.time())));
    if let Some(content_type) = message.data_content_type() {
        event.insert("datacontenttype".into(), json!(content_type));
    }
    if let Some(key) = message.key() {
        event.insert("partitionkey".into(), json!(key));
    }
    if !message.headers().is_empty() {
        event.insert("headers".into(), json!(message.headers()));
    }
    let payload = message.payload();
    if !payload.is_empty() {
        let json_type = message
            .data_content_type()
            .is_some_and(|t| t.starts_with("application/json") || t.contains("+json"));
        let parsed = json_type
            .then(|| serde_json::from_slice::<Value>(payload).ok())
            .flatten();
        match (parsed, std::str::from_utf8(payload)) {
            (Some(value), _) => {
                event.insert("data".into(), value);
            }
            (None, Ok(text)) => {
                event.insert("data".into(), json!(text));
            }
            (None, Err(_)) => {
                event.insert(
                    "data_base64".into(),
                    json!(base64::engine::general_purpose::STANDARD.encode(payload)),
                );
            }
        }
    }
    Value::Object(event)
}

#[cfg(test)]
mod tests {
    use plexus_core::Message;

    use super::to_json;

    #[test]
    fn json_payloads_are_inlined_and_binary_ones_base64() {
        let message = Message::builder("shop.orders.v1.OrderPlaced", "/shop/orders")
            .subject("ord-1")
            .key("ord-1")
            .header("tenant", "t1")
            .payload("application/json", r#"{"orderId":"ord-1"}"#)
            .build()
            .unwrap();
        let event = to_json(&message);
        assert_eq!(event["specversion"], "1.0");
        assert_eq!(event["type"], "shop.orders.v1.OrderPlaced");
        assert_eq!(event["partitionkey"], "ord-1");
        assert_eq!(event["headers"]["tenant"], "t1");
        assert_eq!(event["data"]["orderId"], "ord-1");
        let binary = Message::builder("t", "/s")
            .payload("application/octet-stream", vec![0xff, 0x00])
            .build()
            .unwrap();
        assert_eq!(to_json(&binary)["data_base64"], "/wA=");
    }
}
