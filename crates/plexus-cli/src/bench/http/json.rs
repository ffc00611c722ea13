//! The JSON twin of the bench messages: serde types written and read in the
//! proto3 JSON mapping (camelCase names, int64 as strings, default values
//! left out, unknown fields refused), so a plain JSON handler exchanges
//! exactly the bytes the gateway does. A test checks that against the
//! gateway's own mapping (prost-reflect).

use serde::{Deserialize, Serialize};

use super::quote::{Line, LineTotal, QuoteReply, QuoteRequest};

/// `plexus.bench.v1.QuoteRequest` in JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QuoteRequestJson {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    customer_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    currency: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    lines: Vec<LineJson>,
}

/// `plexus.bench.v1.Line` in JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LineJson {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    sku: String,
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    quantity: u32,
    #[serde(default, skip_serializing_if = "is_zero_i64", with = "int64")]
    unit_price_cents: i64,
}

/// `plexus.bench.v1.QuoteReply` in JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QuoteReplyJson {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    quote_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    currency: String,
    #[serde(default, skip_serializing_if = "is_zero_i64", with = "int64")]
    total_cents: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    lines: Vec<LineTotalJson>,
}

/// `plexus.bench.v1.LineTotal` in JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LineTotalJson {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    sku: String,
    #[serde(default, skip_serializing_if = "is_zero_i64", with = "int64")]
    total_cents: i64,
}

fn is_zero_u32(value: &u32) -> bool {
    *value == 0
}

fn is_zero_i64(value: &i64) -> bool {
    *value == 0
}

/// int64 in proto3 JSON: written as a decimal string, read from a string
/// or a number.
mod int64 {
    use std::fmt;

    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &i64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
        deserializer.deserialize_any(Int64)
    }

    struct Int64;

    impl Visitor<'_> for Int64 {
        type Value = i64;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an int64, as a decimal string or a number")
        }

        fn visit_i64<E: de::Error>(self, value: i64) -> Result<i64, E> {
            Ok(value)
        }

        fn visit_u64<E: de::Error>(self, value: u64) -> Result<i64, E> {
            i64::try_from(value).map_err(|_| E::custom(format!("{value} overflows int64")))
        }

        fn visit_str<E: de::Error>(self, value: &str) -> Result<i64, E> {
            value
                .parse()
                .map_err(|_| E::custom(format!("`{value}` is not an int64")))
        }
    }
}

impl From<QuoteRequest> for QuoteRequestJson {
    fn from(m: QuoteRequest) -> Self {
        QuoteRequestJson {
            customer_id: m.customer_id,
            currency: m.currency,
            lines: m
                .lines
                .into_iter()
                .map(|l| LineJson {
                    sku: l.sku,
                    quantity: l.quantity,
                    unit_price_cents: l.unit_price_cents,
                })
                .collect(),
        }
    }
}

impl From<QuoteRequestJson> for QuoteRequest {
    fn from(m: QuoteRequestJson) -> Self {
        QuoteRequest {
            customer_id: m.customer_id,
            currency: m.currency,
            lines: m
                .lines
                .into_iter()
                .map(|l| Line {
                    sku: l.sku,
                    quantity: l.quantity,
                    unit_price_cents: l.unit_price_cents,
                })
                .collect(),
        }
    }
}

impl From<QuoteReply> for QuoteReplyJson {
    fn from(m: QuoteReply) -> Self {
        QuoteReplyJson {
            quote_id: m.quote_id,
            currency: m.currency,
            total_cents: m.total_cents,
            lines: m
                .lines
                .into_iter()
                .map(|l| LineTotalJson {
                    sku: l.sku,
                    total_cents: l.total_cents,
                })
                .collect(),
        }
    }
}

impl From<QuoteReplyJson> for QuoteReply {
    fn from(m: QuoteReplyJson) -> Self {
        QuoteReply {
            quote_id: m.quote_id,
            currency: m.currency,
            total_cents: m.total_cents,
            lines: m
                .lines
                .into_iter()
                .map(|l| LineTotal {
                    sku: l.sku,
                    total_cents: l.total_cents,
                })
                .collect(),
        }
    }
}

impl QuoteReplyJson {
    /// The reply's total.
    pub fn total_cents(&self) -> i64 {
        self.total_cents
    }
}

#[cfg(test)]
mod tests {
    use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};

    use super::*;
    use crate::bench::http::quote::{self, FILE_DESCRIPTOR_SET, request};

    /// The message, written by prost-reflect's proto3 JSON mapping with the
    /// gateway's options (JSON names, defaults left out).
    fn reflect_json<M: prost::Message>(message: &M, name: &str) -> Vec<u8> {
        let pool = DescriptorPool::decode(FILE_DESCRIPTOR_SET).unwrap();
        let desc = pool.get_message_by_name(name).unwrap();
        let dynamic = DynamicMessage::decode(desc, message.encode_to_vec().as_slice()).unwrap();
        let mut out = serde_json::Serializer::new(Vec::new());
        dynamic
            .serialize_with_options(&mut out, &SerializeOptions::new())
            .unwrap();
        out.into_inner()
    }

    #[test]
    fn writes_the_bytes_of_the_proto3_json_mapping() {
        for lines in [1, 38] {
            let req = request(lines);
            let twin = serde_json::to_vec(&QuoteRequestJson::from(req.clone())).unwrap();
            assert_eq!(
                String::from_utf8(twin).unwrap(),
                String::from_utf8(reflect_json(&req, "plexus.bench.v1.QuoteRequest")).unwrap()
            );
            let reply = quote::quote(req).unwrap();
            let twin = serde_json::to_vec(&QuoteReplyJson::from(reply.clone())).unwrap();
            assert_eq!(
                String::from_utf8(twin).unwrap(),
                String::from_utf8(reflect_json(&reply, "plexus.bench.v1.QuoteReply")).unwrap()
            );
        }
    }

    #[test]
    fn reads_back_what_it_writes_and_refuses_unknown_fields() {
        let req = request(3);
        let text = serde_json::to_vec(&QuoteRequestJson::from(req.clone())).unwrap();
        let back: QuoteRequestJson = serde_json::from_slice(&text).unwrap();
        assert_eq!(QuoteRequest::from(back), req);
        let numbers: QuoteRequestJson =
            serde_json::from_str(r#"{"lines":[{"sku":"a","quantity":2,"unitPriceCents":5}]}"#)
                .unwrap();
        assert_eq!(QuoteRequest::from(numbers).lines[0].unit_price_cents, 5);
        let unknown = serde_json::from_str::<QuoteRequestJson>(r#"{"customer":"x"}"#);
        assert!(
            unknown
                .unwrap_err()
                .to_string()
                .contains("unknown field `customer`")
        );
    }
}
