//! Echo services of which a test writes only the unary method.

use plexus_rpc::echo::v1::echo_server::Echo;
use plexus_rpc::echo::v1::{EchoReply, EchoRequest, StreamRequest};
use plexus_rpc::echo::{EchoService, ReplyStream};
use tonic::{Request, Response, Status, Streaming};

/// A test's own unary handler.
#[tonic::async_trait]
pub trait Unary: Send + Sync + 'static {
    /// Answers `plexus.echo.v1.Echo/Unary`.
    async fn unary(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status>;
}

/// The stock echo.
#[tonic::async_trait]
impl Unary for EchoService {
    async fn unary(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        Echo::unary(self, request).await
    }
}

/// Serves a [`Unary`] as the Echo service: the test's unary method, the
/// stock streaming methods.
#[derive(Clone, Default)]
pub struct UnaryEcho<U>(pub U);

#[tonic::async_trait]
impl<U: Unary> Echo for UnaryEcho<U> {
    async fn unary(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        self.0.unary(request).await
    }

    type ServerStreamStream = ReplyStream;

    async fn server_stream(
        &self,
        request: Request<StreamRequest>,
    ) -> Result<Response<ReplyStream>, Status> {
        EchoService.server_stream(request).await
    }

    async fn client_stream(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<EchoReply>, Status> {
        EchoService.client_stream(request).await
    }

    type BidiStream = ReplyStream;

    async fn bidi(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<ReplyStream>, Status> {
        EchoService.bidi(request).await
    }
}
