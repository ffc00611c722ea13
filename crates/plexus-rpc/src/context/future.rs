//! [`ResponseFuture`] of the context layer.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::Response;
use pin_project_lite::pin_project;
use tokio::task::futures::TaskLocalFuture;
use tokio::time::Sleep;
use tonic::Status;
use tracing::Span;

use super::body::{CancelOnDrop, ContextBody};
use super::{CURRENT, CallContext};

pin_project! {
    /// The response future of [`Context`](super::Context).
    pub struct ResponseFuture<F: Future> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F: Future> {
        Rejected { status: Option<Status> },
        Running {
            #[pin]
            inner: TaskLocalFuture<CallContext, F>,
            sleep: Option<Pin<Box<Sleep>>>,
            guard: Option<CancelOnDrop>,
            span: Span,
        },
    }
}

impl<F: Future> ResponseFuture<F> {
    pub(super) fn rejected(status: Status) -> Self {
        ResponseFuture {
            state: State::Rejected {
                status: Some(status),
            },
        }
    }

    pub(super) fn new(inner: F, ctx: CallContext, span: Span) -> Self {
        let sleep = ctx
            .deadline()
            .map(|d| Box::pin(tokio::time::sleep_until(d.instant())));
        let guard = Some(CancelOnDrop::new(ctx.clone()));
        ResponseFuture {
            state: State::Running {
                inner: CURRENT.scope(ctx, inner),
                sleep,
                guard,
                span,
            },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ContextBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Rejected { status } => {
                let status = status
                    .take()
                    .expect("ResponseFuture polled after completion");
                Poll::Ready(Ok(ContextBody::status_only(status)))
            }
            StateProj::Running {
                inner,
                sleep,
                guard,
                span,
            } => {
                let _entered = span.enter();
                if let Poll::Ready(result) = inner.poll(cx) {
                    let response = ready_response(result, sleep.take(), guard.take());
                    return Poll::Ready(response);
                }
                if let Some(sleep) = sleep {
                    ready!(sleep.as_mut().poll(cx));
                    tracing::debug!("deadline passed while the handler was running");
                    // Dropping the guard (when this future is dropped) cancels the call.
                    return Poll::Ready(Ok(ContextBody::status_only(Status::deadline_exceeded(
                        "deadline passed while the call was being handled",
                    ))));
                }
                Poll::Pending
            }
        }
    }
}

fn ready_response<B, E>(
    result: Result<Response<B>, E>,
    sleep: Option<Pin<Box<Sleep>>>,
    guard: Option<CancelOnDrop>,
) -> Result<Response<ContextBody<B>>, E> {
    let response = result?;
    Ok(response.map(|body| ContextBody::new(body, sleep, guard)))
}
