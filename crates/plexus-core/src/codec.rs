//! Pluggable payload codecs: protobuf (prost) and JSON (serde) behind one trait.

use std::marker::PhantomData;

use bytes::Bytes;

use crate::error::Error;

/// Turns values of type `T` into payload bytes and back.
///
/// A codec names the media type it produces, which becomes the message's
/// `datacontenttype`. Codecs are stateless and cheap to share.
pub trait Codec<T>: Send + Sync {
    /// The media type of the encoded form, e.g. `application/protobuf`.
    fn content_type(&self) -> &'static str;

    /// Encodes `value`.
    fn encode(&self, value: &T) -> Result<Bytes, Error>;

    /// Decodes a value from `bytes`; the error names the problem (and the
    /// field, where the format allows).
    fn decode(&self, bytes: &[u8]) -> Result<T, Error>;
}

/// Protocol Buffers, via `prost`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProtobufCodec<T>(PhantomData<fn() -> T>);

impl<T> ProtobufCodec<T> {
    /// The protobuf codec for `T`.
    pub fn new() -> Self {
        ProtobufCodec(PhantomData)
    }
}

/// The media type of protobuf payloads.
pub const PROTOBUF_CONTENT_TYPE: &str = "application/protobuf";

/// The media type of JSON payloads.
pub const JSON_CONTENT_TYPE: &str = "application/json";

impl<T: prost::Message + Default> Codec<T> for ProtobufCodec<T> {
    fn content_type(&self) -> &'static str {
        PROTOBUF_CONTENT_TYPE
    }

    fn encode(&self, value: &T) -> Result<Bytes, Error> {
        Ok(Bytes::from(value.encode_to_vec()))
    }

    fn decode(&self, bytes: &[u8]) -> Result<T, Error> {
        T::decode(bytes).map_err(|e| Error::Decode {
            content_type: PROTOBUF_CONTENT_TYPE,
            reason: e.to_string(),
        })
    }
}

/// JSON, via `serde_json`.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonCodec<T>(PhantomData<fn() -> T>);

impl<T> JsonCodec<T> {
    /// The JSON codec for `T`.
    pub fn new() -> Self {
        JsonCodec(PhantomData)
    }
}

impl<T: serde::Serialize + serde::de::DeserializeOwned> Codec<T> for JsonCodec<T> {
    fn content_type(&self) -> &'static str {
        JSON_CONTENT_TYPE
    }

    fn encode(&self, value: &T) -> Result<Bytes, Error> {
        serde_json::to_vec(value)
            .map(Bytes::from)
            .map_err(|e| Error::Encode {
                content_type: JSON_CONTENT_TYPE,
                reason: e.to_string(),
            })
    }

    fn decode(&self, bytes: &[u8]) -> Result<T, Error> {
        serde_json::from_slice(bytes).map_err(|e| Error::Decode {
            content_type: JSON_CONTENT_TYPE,
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, PartialEq, prost::Message, serde::Serialize, serde::Deserialize)]
    struct Order {
        #[prost(string, tag = "1")]
        id: String,
        #[prost(uint32, tag = "2")]
        quantity: u32,
    }

    fn order() -> Order {
        Order {
            id: "o-1".into(),
            quantity: 3,
        }
    }

    fn round_trip<C: Codec<Order>>(codec: C) {
        let bytes = codec.encode(&order()).unwrap();
        assert_eq!(codec.decode(&bytes).unwrap(), order());
    }

    #[test]
    fn both_codecs_round_trip() {
        round_trip(ProtobufCodec::<Order>::new());
        round_trip(JsonCodec::<Order>::new());
    }

    #[test]
    fn protobuf_is_smaller_than_json_for_the_same_value() {
        let pb = ProtobufCodec::<Order>::new().encode(&order()).unwrap();
        let json = JsonCodec::<Order>::new().encode(&order()).unwrap();
        assert!(pb.len() < json.len(), "{} vs {}", pb.len(), json.len());
    }

    #[test]
    fn decode_errors_name_the_codec_and_problem() {
        let err = ProtobufCodec::<Order>::new()
            .decode(&[0x0a, 0x05, b'a'])
            .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidArgument);
        assert!(err.to_string().contains("application/protobuf"), "{err}");

        let err = JsonCodec::<Order>::new()
            .decode(br#"{"id": 5}"#)
            .unwrap_err();
        assert!(err.to_string().contains("application/json"), "{err}");
        assert!(err.to_string().contains("invalid type"), "{err}");
    }
}
