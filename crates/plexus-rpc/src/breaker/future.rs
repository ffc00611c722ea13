//! [`ResponseFuture`]: the response of a call through a
//! [`CircuitBreaker`](super::CircuitBreaker).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Response;
use pin_project_lite::pin_project;

use super::circuit::Permit;
use super::classify::outcome;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

pin_project! {
    /// The response future of [`CircuitBreaker`](super::CircuitBreaker):
    /// records the call's outcome in the circuit, or yields the rejection
    /// of a call that was not sent.
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Sent {
            #[pin]
            future: F,
            permit: Option<Permit>,
            grpc: bool,
        },
        Rejected { error: Option<BoxError> },
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn sent(future: F, permit: Permit, grpc: bool) -> Self {
        ResponseFuture {
            kind: Kind::Sent {
                future,
                permit: Some(permit),
                grpc,
            },
        }
    }

    pub(crate) fn rejected(error: BoxError) -> Self {
        ResponseFuture {
            kind: Kind::Rejected { error: Some(error) },
        }
    }
}

impl<F, R, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<R>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<R>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Sent {
                future,
                permit,
                grpc,
            } => {
                let result = std::task::ready!(future.poll(cx)).map_err(Into::into);
                if let Some(permit) = permit.take() {
                    permit.record(outcome(*grpc, &result));
                }
                Poll::Ready(result)
            }
            KindProj::Rejected { error } => Poll::Ready(Err(error
                .take()
                .expect("ResponseFuture polled after completion"))),
        }
    }
}
