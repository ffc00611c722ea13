//! Names the path in the bare `UNIMPLEMENTED` answers tonic gives for an
//! unknown service or method (it sends the code with no message).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{Response, Uri};
use pin_project_lite::pin_project;
use tonic::Status;

pin_project! {
    /// A response future whose `UNIMPLEMENTED` answer, if it has no message,
    /// gets one naming the requested path.
    pub(crate) struct NameUnimplemented<F> {
        #[pin]
        inner: F,
        uri: Option<Uri>,
    }
}

impl<F> NameUnimplemented<F> {
    pub(crate) fn new(inner: F, uri: Uri) -> Self {
        NameUnimplemented {
            inner,
            uri: Some(uri),
        }
    }
}

impl<F, B, E> Future for NameUnimplemented<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.inner.poll(cx))?;
        let headers = response.headers_mut();
        // 12 is UNIMPLEMENTED.
        let unimplemented = headers.get(Status::GRPC_STATUS).is_some_and(|v| v == "12");
        if unimplemented
            && !headers.contains_key(Status::GRPC_MESSAGE)
            && let Some(uri) = this.uri.take()
        {
            let status = Status::unimplemented(format!(
                "{} is not served here: no such service or method (check the package, service and method names)",
                uri.path()
            ));
            // Only a message that cannot be encoded fails; the code stays.
            let _ = status.add_header(headers);
        }
        Poll::Ready(Ok(response))
    }
}
