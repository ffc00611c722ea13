//! [`Counting`]: an Echo service that counts the calls reaching its
//! handlers, so a test can show that a refused call never ran one.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use plexus_rpc::echo::v1::echo_server::Echo;
use plexus_rpc::echo::v1::{EchoReply, EchoRequest, StreamRequest};
use plexus_rpc::echo::{EchoService, MAX_STREAM_COUNT, ReplyStream};
use tonic::{Request, Response, Status, Streaming};

use super::unary::Unary;

/// Counts handler runs (of any method) and the client-stream messages
/// handed to a handler.
///
/// - `unary` is answered by `U` (the stock echo by default).
/// - `server_stream` sends `count` one-byte replies, then one carrying the
///   request's payload: a reply of any size right behind small ones,
///   produced together.
/// - `client_stream` and `bidi` answer as the stock service does.
#[derive(Clone, Default)]
pub struct Counting<U = EchoService> {
    unary: U,
    calls: Arc<AtomicUsize>,
    received: Arc<AtomicUsize>,
}

impl Counting {
    /// Counts calls to the stock echo.
    pub fn new() -> Self {
        Counting::answering(EchoService)
    }
}

impl<U> Counting<U> {
    /// Counts calls, with `unary` answering the unary ones.
    pub fn answering(unary: U) -> Self {
        Counting {
            unary,
            calls: Arc::default(),
            received: Arc::default(),
        }
    }

    /// How many calls reached a handler.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// How many client-stream messages were handed to a handler.
    pub fn received(&self) -> usize {
        self.received.load(Ordering::SeqCst)
    }

    fn called(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

#[tonic::async_trait]
impl<U: Unary> Echo for Counting<U> {
    async fn unary(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        self.called();
        self.unary.unary(request).await
    }

    type ServerStreamStream = ReplyStream;

    async fn server_stream(
        &self,
        request: Request<StreamRequest>,
    ) -> Result<Response<ReplyStream>, Status> {
        self.called();
        let StreamRequest { payload, count } = request.into_inner();
        if count > MAX_STREAM_COUNT {
            return Err(Status::invalid_argument(format!(
                "count is {count}; at most {MAX_STREAM_COUNT} replies can be asked for"
            )));
        }
        let small = (0..u64::from(count)).map(|sequence| {
            Ok(EchoReply {
                payload: vec![1].into(),
                sequence,
            })
        });
        let last = EchoReply {
            payload,
            sequence: u64::from(count),
        };
        let replies = small.chain(std::iter::once(Ok(last)));
        Ok(Response::new(Box::pin(tokio_stream::iter(replies))))
    }

    async fn client_stream(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<EchoReply>, Status> {
        self.called();
        let mut inbound = request.into_inner();
        let mut reply = EchoReply::default();
        while let Some(message) = inbound.message().await? {
            self.received.fetch_add(1, Ordering::SeqCst);
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
        self.called();
        EchoService.bidi(request).await
    }
}
