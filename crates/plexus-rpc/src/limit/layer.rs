//! [`MessageSizeLayer`] and its service, [`MessageSize`].

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use pin_project_lite::pin_project;
use tonic::Status;
use tonic::body::Body;
use tower_layer::Layer;
use tower_service::Service;

use super::frame::{FrameScanner, Oversized};
use super::future::ResponseFuture;

/// Limits the size of each request and response message. See the [module docs](super).
#[derive(Debug, Clone, Copy)]
pub struct MessageSizeLayer {
    max_decoding: usize,
    max_encoding: usize,
}

impl MessageSizeLayer {
    /// Limits request messages to `max_decoding` bytes and response messages
    /// to `max_encoding` bytes.
    pub fn new(max_decoding: usize, max_encoding: usize) -> Self {
        MessageSizeLayer {
            max_decoding,
            max_encoding,
        }
    }
}

impl<S> Layer<S> for MessageSizeLayer {
    type Service = MessageSize<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MessageSize {
            inner,
            limits: *self,
        }
    }
}

/// The service of [`MessageSizeLayer`].
#[derive(Debug, Clone)]
pub struct MessageSize<S> {
    inner: S,
    limits: MessageSizeLayer,
}

impl<S, B> Service<Request<Body>> for MessageSize<S>
where
    S: Service<Request<Body>, Response = Response<B>>,
{
    type Response = Response<LimitedBody<B>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let max_decoding = self.limits.max_decoding;
        let req =
            req.map(|body| Body::new(LimitedBody::new(body, max_decoding, Direction::Request)));
        ResponseFuture::new(self.inner.call(req), self.limits.max_encoding)
    }
}

/// `response` with its messages checked against `max_encoding`.
pub(super) fn limit_response<B>(
    response: Response<B>,
    max_encoding: usize,
) -> Response<LimitedBody<B>> {
    response.map(|body| LimitedBody::new(body, max_encoding, Direction::Response))
}

#[derive(Debug, Clone, Copy)]
enum Direction {
    Request,
    Response,
}

pin_project! {
    /// A body whose gRPC messages are checked against a size limit: a
    /// request body fails with `RESOURCE_EXHAUSTED`, a response body ends
    /// with `RESOURCE_EXHAUSTED` trailers.
    pub struct LimitedBody<B> {
        #[pin]
        inner: B,
        scanner: FrameScanner,
        limit: usize,
        direction: Direction,
        // An oversized message found after whole messages in the same chunk:
        // those went out first, the refusal goes out on the next poll.
        pending: Option<usize>,
        failed: bool,
    }
}

impl<B> LimitedBody<B> {
    fn new(inner: B, limit: usize, direction: Direction) -> Self {
        LimitedBody {
            inner,
            scanner: FrameScanner::new(limit),
            limit,
            direction,
            pending: None,
            failed: false,
        }
    }
}

impl<B> HttpBody for LimitedBody<B>
where
    B: HttpBody<Data = Bytes, Error = Status>,
{
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.project();
        if *this.failed {
            return Poll::Ready(None);
        }
        if let Some(len) = this.pending.take() {
            *this.failed = true;
            return Poll::Ready(Some(refusal(*this.direction, len, *this.limit)));
        }
        let frame = match ready!(this.inner.poll_frame(cx)) {
            Some(Ok(frame)) => frame,
            other => return Poll::Ready(other),
        };
        let Some(data) = frame.data_ref() else {
            return Poll::Ready(Some(Ok(frame)));
        };
        let Err(Oversized { len, offset }) = this.scanner.scan(data) else {
            return Poll::Ready(Some(Ok(frame)));
        };
        if offset > 0 {
            // Deliver the whole messages that came before the oversized one.
            let before = data.slice(..offset);
            *this.pending = Some(len);
            return Poll::Ready(Some(Ok(Frame::data(before))));
        }
        *this.failed = true;
        Poll::Ready(Some(refusal(*this.direction, len, *this.limit)))
    }

    fn is_end_stream(&self) -> bool {
        self.failed || (self.pending.is_none() && self.inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// How an oversized message of `len` bytes ends the stream: an error for a
/// request (the handler sees it), `RESOURCE_EXHAUSTED` trailers for a response.
fn refusal(direction: Direction, len: usize, limit: usize) -> Result<Frame<Bytes>, Status> {
    match direction {
        Direction::Request => Err(Status::resource_exhausted(format!(
            "request message is {len} bytes, larger than this server's limit of {limit} bytes"
        ))),
        Direction::Response => {
            tracing::warn!(
                len,
                limit,
                "response message over the encoding limit; ending the call"
            );
            let status = Status::resource_exhausted(format!(
                "response message is {len} bytes, larger than this server's limit of {limit} bytes"
            ));
            Ok(Frame::trailers(crate::status::trailers(&status)))
        }
    }
}
