//! [`DynamicCodec`]: a tonic codec for messages known only by their
//! descriptors, fetched from the server at run time.

use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor, ReflectMessage};
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// Encodes requests and decodes replies of one method as [`DynamicMessage`]s.
#[derive(Debug, Clone)]
pub struct DynamicCodec {
    reply: MessageDescriptor,
}

impl DynamicCodec {
    /// A codec whose decoder reads `reply` messages. Requests are encoded
    /// from whatever [`DynamicMessage`] they are.
    pub fn new(reply: MessageDescriptor) -> Self {
        DynamicCodec { reply }
    }
}

impl Codec for DynamicCodec {
    type Encode = DynamicMessage;
    type Decode = DynamicMessage;
    type Encoder = DynamicEncoder;
    type Decoder = DynamicDecoder;

    fn encoder(&mut self) -> DynamicEncoder {
        DynamicEncoder
    }

    fn decoder(&mut self) -> DynamicDecoder {
        DynamicDecoder {
            reply: self.reply.clone(),
        }
    }
}

/// The encoder of [`DynamicCodec`].
#[derive(Debug, Clone, Copy)]
pub struct DynamicEncoder;

impl Encoder for DynamicEncoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn encode(&mut self, item: DynamicMessage, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst).map_err(|e| {
            Status::internal(format!(
                "cannot encode the {} request: {e}",
                item.descriptor().full_name()
            ))
        })
    }
}

/// The decoder of [`DynamicCodec`].
#[derive(Debug, Clone)]
pub struct DynamicDecoder {
    reply: MessageDescriptor,
}

impl Decoder for DynamicDecoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<DynamicMessage>, Status> {
        DynamicMessage::decode(self.reply.clone(), src)
            .map(Some)
            .map_err(|e| {
                Status::internal(format!(
                    "the reply is not a valid {} message: {e}",
                    self.reply.full_name()
                ))
            })
    }
}
