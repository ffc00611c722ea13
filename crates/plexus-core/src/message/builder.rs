//! [`MessageBuilder`]: the checked way to make a [`Message`].

use std::collections::BTreeMap;
use std::time::SystemTime;

use bytes::Bytes;

use super::{Message, MessageParts};
use crate::codec::Codec;
use crate::error::Error;

/// Builds a [`Message`]; [`build`](MessageBuilder::build) checks every attribute.
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct MessageBuilder {
    parts: MessageParts,
    /// Whether `id` and `time` were given; what was not is filled in by
    /// `build`, from one reading of the clock.
    id_set: bool,
    time_set: bool,
}

impl MessageBuilder {
    pub(super) fn new(ty: String, source: String) -> Self {
        MessageBuilder {
            parts: MessageParts {
                id: String::new(),
                source,
                ty,
                subject: None,
                time: SystemTime::UNIX_EPOCH,
                data_content_type: None,
                key: None,
                headers: BTreeMap::new(),
                payload: Bytes::new(),
            },
            id_set: false,
            time_set: false,
        }
    }

    /// Replaces the generated UUIDv7 id.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.parts.id = id.into();
        self.id_set = true;
        self
    }

    /// Sets the CloudEvents `subject`.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.parts.subject = Some(subject.into());
        self
    }

    /// Sets the CloudEvents `time` (default: when `build` is called).
    pub fn time(mut self, time: SystemTime) -> Self {
        self.parts.time = time;
        self.time_set = true;
        self
    }

    /// Sets the ordering key.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.parts.key = Some(key.into());
        self
    }

    /// Adds a header; names are lowercase.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.parts.headers.insert(name.into(), value.into());
        self
    }

    /// Sets raw payload bytes and their media type.
    pub fn payload(mut self, content_type: impl Into<String>, payload: impl Into<Bytes>) -> Self {
        self.parts.data_content_type = Some(content_type.into());
        self.parts.payload = payload.into();
        self
    }

    /// Encodes `value` with `codec` as the payload, setting `datacontenttype`.
    pub fn encode<T>(mut self, codec: &impl Codec<T>, value: &T) -> Result<Self, Error> {
        self.parts.payload = codec.encode(value)?;
        self.parts.data_content_type = Some(codec.content_type().to_owned());
        Ok(self)
    }

    /// Checks the attributes and returns the message; a message without
    /// an explicit id gets a fresh UUIDv7, one without a time gets now.
    pub fn build(self) -> Result<Message, Error> {
        let mut parts = self.parts;
        if !(self.id_set && self.time_set) {
            let now = SystemTime::now();
            if !self.time_set {
                parts.time = now;
            }
            if !self.id_set {
                parts.id = super::id::generate(now);
            }
        }
        Message::from_parts(parts)
    }
}
