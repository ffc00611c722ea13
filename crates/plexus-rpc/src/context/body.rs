//! [`ContextBody`]: the response body of a call, ended with
//! `DEADLINE_EXCEEDED` when the deadline passes mid-stream, and cancelling
//! the call's context when dropped.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tonic::Status;

use super::CallContext;

/// Cancels the call's context when dropped.
#[derive(Debug)]
pub(crate) struct CancelOnDrop(CallContext);

impl CancelOnDrop {
    pub(crate) fn new(ctx: CallContext) -> Self {
        CancelOnDrop(ctx)
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.end();
    }
}

pin_project! {
    /// A response body bound to its call: see the [module docs](self).
    pub struct ContextBody<B> {
        // `None` for an answer made of its status alone (trailers-only).
        #[pin]
        inner: Option<B>,
        sleep: Option<Pin<Box<Sleep>>>,
        guard: Option<CancelOnDrop>,
        done: bool,
    }
}

impl<B> ContextBody<B> {
    pub(crate) fn new(
        inner: B,
        sleep: Option<Pin<Box<Sleep>>>,
        guard: Option<CancelOnDrop>,
    ) -> Self {
        ContextBody {
            inner: Some(inner),
            sleep,
            guard,
            done: false,
        }
    }

    /// A trailers-only answer: `status` in the response headers, no body.
    pub(crate) fn status_only(status: Status) -> http::Response<Self> {
        status.into_http::<()>().map(|()| ContextBody {
            inner: None,
            sleep: None,
            guard: None,
            done: true,
        })
    }
}

impl<B> Body for ContextBody<B>
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
        if *this.done {
            return Poll::Ready(None);
        }
        let Some(inner) = this.inner.as_pin_mut() else {
            return Poll::Ready(None);
        };
        if let Poll::Ready(frame) = inner.poll_frame(cx) {
            if frame.is_none() {
                *this.done = true;
                this.guard.take();
            }
            return Poll::Ready(frame);
        }
        if let Some(sleep) = this.sleep
            && sleep.as_mut().poll(cx).is_ready()
        {
            *this.done = true;
            this.guard.take();
            let status =
                Status::deadline_exceeded("deadline passed while the response was streaming");
            let trailers = crate::status::trailers(&status);
            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Some(inner) if !self.done => inner.size_hint(),
            _ => SizeHint::with_exact(0),
        }
    }
}
