//! [`ResponseFuture`] of the message size layer.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::Response;
use pin_project_lite::pin_project;

use super::layer::{LimitedBody, limit_response};

pin_project! {
    /// The response future of [`MessageSize`](super::MessageSize): checks
    /// the response's messages against the encoding limit.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        max_encoding: usize,
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(inner: F, max_encoding: usize) -> Self {
        ResponseFuture {
            inner,
            max_encoding,
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<LimitedBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = ready!(this.inner.poll(cx))?;
        Poll::Ready(Ok(limit_response(response, *this.max_encoding)))
    }
}
