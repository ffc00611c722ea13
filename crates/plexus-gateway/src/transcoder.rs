//! [`Transcoder`]: proto3 JSON to protobuf wire bytes and back, as the
//! gateway transcodes unary calls.

use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, SerializeOptions};

use crate::http_error::ApiError;
use crate::transcode::{self, json_to_wire, schema::Schema, wire_to_json};

/// Transcodes messages of one descriptor pool between proto3 JSON and
/// protobuf wire bytes.
///
/// Messages made only of plain fields are transcoded directly, without
/// building a `DynamicMessage`; well-known types, extensions, groups and
/// any input the direct path does not accept go through prost-reflect's
/// `DynamicMessage`, which gives the same result and names every mistake
/// (the field, the problem) in the [`ApiError`].
#[derive(Debug, Clone)]
pub struct Transcoder {
    schema: Schema,
    serialize: SerializeOptions,
    emit_unpopulated: bool,
}

impl Transcoder {
    /// A transcoder for the messages of `pool`; `emit_unpopulated` writes
    /// fields holding their default value too.
    pub fn new(pool: &DescriptorPool, emit_unpopulated: bool) -> Self {
        Transcoder {
            schema: Schema::new(pool),
            serialize: transcode::serialize_options(emit_unpopulated),
            emit_unpopulated,
        }
    }

    /// Reads the JSON `body` as a `message` and encodes it: proto or JSON
    /// field names, unknown fields refused. The error is a 400 naming the
    /// field or the problem.
    pub fn json_to_protobuf(
        &self,
        message: &MessageDescriptor,
        body: &[u8],
    ) -> Result<Vec<u8>, ApiError> {
        if let Some(index) = self.schema.direct(message)
            && let Some(bytes) = json_to_wire::encode(&self.schema, index, body)
        {
            return Ok(bytes);
        }
        Ok(transcode::message_from_json(message.clone(), body)?.encode_to_vec())
    }

    /// Writes the wire bytes of a `message` as JSON (JSON field names,
    /// 64-bit integers as strings, enums by name). Bytes that are not a
    /// valid `message` are an INTERNAL error (500): they came from the
    /// upstream.
    pub fn protobuf_to_json(
        &self,
        message: &MessageDescriptor,
        bytes: &[u8],
    ) -> Result<Vec<u8>, ApiError> {
        if let Some(index) = self.schema.direct(message)
            && let Some(json) =
                wire_to_json::write(&self.schema, index, bytes, self.emit_unpopulated)
        {
            return Ok(json);
        }
        let decoded = DynamicMessage::decode(message.clone(), bytes).map_err(|e| {
            ApiError::new(
                tonic::Code::Internal,
                format!(
                    "the upstream sent a response that is not a valid {}: {e}",
                    message.full_name()
                ),
            )
        })?;
        transcode::message_to_json(&decoded, None, &self.serialize)
    }

    /// Whether `message` takes the direct path (see the type's
    /// documentation).
    pub fn is_direct(&self, message: &MessageDescriptor) -> bool {
        self.schema.direct(message).is_some()
    }

    pub(crate) fn schema(&self) -> &Schema {
        &self.schema
    }
}
