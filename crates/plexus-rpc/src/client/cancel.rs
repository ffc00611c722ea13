//! Ties a call's request stream to its response: once the caller drops the
//! call (the response future or the response stream), the request stream
//! ends with an error, so the transport resets the HTTP/2 stream and the
//! server sees the cancellation — even while the caller's request stream is
//! idle.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::sync::oneshot;
use tonic::Status;

/// The two ends of one call's cancellation signal.
pub(crate) fn pair() -> (Held, oneshot::Receiver<()>) {
    let (tx, rx) = oneshot::channel();
    (Held(tx), rx)
}

/// Held by the response side; dropping it cancels the request stream.
#[derive(Debug)]
pub(crate) struct Held(oneshot::Sender<()>);

impl Held {
    /// Whether the request stream is already gone (it ended, or failed), so
    /// that dropping this has no effect any more.
    pub(crate) fn is_moot(&self) -> bool {
        self.0.is_closed()
    }
}

pin_project! {
    /// A request body that fails once its call is dropped.
    pub(crate) struct RequestBody<B> {
        #[pin]
        inner: B,
        dropped: oneshot::Receiver<()>,
        ended: bool,
    }
}

impl<B> RequestBody<B> {
    pub(crate) fn new(inner: B, dropped: oneshot::Receiver<()>) -> Self {
        RequestBody {
            inner,
            dropped,
            ended: false,
        }
    }
}

impl<B> Body for RequestBody<B>
where
    B: Body<Data = Bytes, Error = Status>,
{
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.project();
        if *this.ended {
            return Poll::Ready(None);
        }
        if let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            if frame.is_none() {
                *this.ended = true;
            }
            return Poll::Ready(frame);
        }
        if Pin::new(this.dropped).poll(cx).is_ready() {
            *this.ended = true;
            return Poll::Ready(Some(Err(Status::cancelled("the caller dropped the call"))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project! {
    /// A response body that keeps its call's request stream alive.
    pub(crate) struct ResponseBody<B> {
        #[pin]
        inner: B,
        held: Held,
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn new(inner: B, held: Held) -> Self {
        ResponseBody { inner, held }
    }
}

impl<B: Body> Body for ResponseBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
