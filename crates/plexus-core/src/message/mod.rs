//! The message: CloudEvents 1.0 attributes, an ordering key, headers and a
//! payload — the one model every plexus transport carries.

mod builder;
mod id;
mod time;
mod validate;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;

pub use builder::MessageBuilder;
pub use time::{format_time, parse_time};
pub use validate::{MAX_ATTRIBUTE_LEN, MAX_HEADER_NAME_LEN, MAX_HEADER_VALUE_LEN, MAX_HEADERS};

use crate::codec::Codec;
use crate::error::Error;

/// The CloudEvents specification version plexus speaks.
pub const SPEC_VERSION: &str = "1.0";

/// One message: a CloudEvent with an optional ordering key and free-form
/// headers. Always valid: every constructor checks the attributes.
///
/// ```
/// use plexus_core::{Message, codec::JsonCodec};
///
/// let msg = Message::builder("shop.order.placed", "/shop/orders")
///     .subject("order-42")
///     .key("customer-7")
///     .encode(&JsonCodec::new(), &serde_json::json!({"total": 12}))?
///     .build()?;
/// assert_eq!(msg.data_content_type(), Some("application/json"));
/// # Ok::<(), plexus_core::Error>(())
/// ```
///
/// Cloning a message is cheap (its fields are shared, reference-counted),
/// so a bus can hand the same message to many deliveries.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    parts: Arc<MessageParts>,
}

/// The fields of a [`Message`], for transports that build one from the wire
/// ([`Message::from_parts`] validates them) or take one apart.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageParts {
    /// CloudEvents `id`: unique per `source`. plexus generates UUIDv7 ids.
    pub id: String,
    /// CloudEvents `source`: a URI-reference naming the producer.
    pub source: String,
    /// CloudEvents `type`, e.g. `shop.order.placed`.
    pub ty: String,
    /// CloudEvents `subject`: what the event is about within the source.
    pub subject: Option<String>,
    /// CloudEvents `time`: when the occurrence happened.
    pub time: SystemTime,
    /// CloudEvents `datacontenttype`: the media type of `payload`.
    pub data_content_type: Option<String>,
    /// Ordering key: messages with the same key keep their order where the
    /// backend promises per-key order.
    pub key: Option<String>,
    /// Free-form headers (lowercase names), carried beside the attributes.
    pub headers: BTreeMap<String, String>,
    /// The payload.
    pub payload: Bytes,
}

impl Message {
    /// Starts a message of CloudEvents `type` from `source`, with a fresh
    /// UUIDv7 id and the current time.
    pub fn builder(ty: impl Into<String>, source: impl Into<String>) -> MessageBuilder {
        MessageBuilder::new(ty.into(), source.into())
    }

    /// Builds a message from its parts, checking every attribute.
    pub fn from_parts(parts: MessageParts) -> Result<Self, Error> {
        validate::parts(&parts)?;
        Ok(Message {
            parts: Arc::new(parts),
        })
    }

    /// Takes the message apart.
    pub fn into_parts(self) -> MessageParts {
        Arc::try_unwrap(self.parts).unwrap_or_else(|shared| (*shared).clone())
    }

    /// CloudEvents `id`.
    pub fn id(&self) -> &str {
        &self.parts.id
    }

    /// CloudEvents `source`.
    pub fn source(&self) -> &str {
        &self.parts.source
    }

    /// CloudEvents `type`.
    pub fn ty(&self) -> &str {
        &self.parts.ty
    }

    /// CloudEvents `subject`.
    pub fn subject(&self) -> Option<&str> {
        self.parts.subject.as_deref()
    }

    /// CloudEvents `time`.
    pub fn time(&self) -> SystemTime {
        self.parts.time
    }

    /// CloudEvents `datacontenttype`.
    pub fn data_content_type(&self) -> Option<&str> {
        self.parts.data_content_type.as_deref()
    }

    /// The ordering key.
    pub fn key(&self) -> Option<&str> {
        self.parts.key.as_deref()
    }

    /// All headers.
    pub fn headers(&self) -> &BTreeMap<String, String> {
        &self.parts.headers
    }

    /// One header by (lowercase) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.parts.headers.get(name).map(String::as_str)
    }

    /// The payload.
    pub fn payload(&self) -> &Bytes {
        &self.parts.payload
    }

    /// Decodes the payload with `codec`.
    pub fn decode<T>(&self, codec: &impl Codec<T>) -> Result<T, Error> {
        codec.decode(&self.parts.payload)
    }
}

#[cfg(test)]
mod tests;
