//! The built-in Echo service (`plexus.echo.v1.Echo`): all four call kinds,
//! no business logic. `plexus bench rpc` measures it; tests use it as a
//! neutral service under the plexus layers.

use std::pin::Pin;

use futures::Stream;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

/// Generated types and service traits of `plexus.echo.v1`.
#[allow(missing_docs)]
pub mod v1 {
    tonic::include_proto!("plexus.echo.v1");
}

/// The encoded `FileDescriptorSet` of plexus's own protos, for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/plexus_descriptor.bin"));

/// The most replies one `ServerStream` call may ask for.
pub const MAX_STREAM_COUNT: u32 = 1_000_000;

use v1::echo_server::Echo;
use v1::{EchoReply, EchoRequest, StreamRequest};

/// A stream of replies.
pub type ReplyStream = Pin<Box<dyn Stream<Item = Result<EchoReply, Status>> + Send>>;

/// Echoes what it is sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct EchoService;

#[tonic::async_trait]
impl Echo for EchoService {
    async fn unary(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        Ok(Response::new(EchoReply {
            payload: request.into_inner().payload,
            sequence: 0,
        }))
    }

    type ServerStreamStream = ReplyStream;

    async fn server_stream(
        &self,
        request: Request<StreamRequest>,
    ) -> Result<Response<ReplyStream>, Status> {
        let StreamRequest { payload, count } = request.into_inner();
        if count > MAX_STREAM_COUNT {
            return Err(Status::invalid_argument(format!(
                "count is {count}; at most {MAX_STREAM_COUNT} replies can be asked for"
            )));
        }
        let replies = tokio_stream::iter(0..u64::from(count)).map(move |sequence| {
            Ok(EchoReply {
                payload: payload.clone(),
                sequence,
            })
        });
        Ok(Response::new(Box::pin(replies)))
    }

    async fn client_stream(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<EchoReply>, Status> {
        let mut inbound = request.into_inner();
        let mut reply = EchoReply::default();
        while let Some(message) = inbound.message().await? {
            reply.payload = message.payload;
            reply.sequence += 1;
        }
        Ok(Response::new(reply))
    }

    type BidiStream = ReplyStream;

    async fn bidi(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<ReplyStream>, Status> {
        let mut sequence = 0u64;
        let replies = request.into_inner().map(move |message| {
            let reply = EchoReply {
                payload: message?.payload,
                sequence,
            };
            sequence += 1;
            Ok(reply)
        });
        Ok(Response::new(Box::pin(replies)))
    }
}
