//! [`ResponseFuture`]: the response of a call through [`Retry`](super::Retry).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The attempts of a retried call, run as one future.
pub(crate) type Attempts<T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send>>;

pin_project! {
    /// The response future of [`Retry`](super::Retry): the inner service's
    /// own future for a call that is never retried, the attempts otherwise.
    pub struct ResponseFuture<F, T> {
        #[pin]
        kind: Kind<F, T>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, T> {
        Once { #[pin] future: F },
        Retrying { attempts: Attempts<T> },
    }
}

impl<F, T> ResponseFuture<F, T> {
    pub(crate) fn once(future: F) -> Self {
        ResponseFuture {
            kind: Kind::Once { future },
        }
    }

    pub(crate) fn retrying(attempts: Attempts<T>) -> Self {
        ResponseFuture {
            kind: Kind::Retrying { attempts },
        }
    }
}

impl<F, T, E> Future for ResponseFuture<F, T>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Once { future } => future.poll(cx).map_err(Into::into),
            KindProj::Retrying { attempts } => attempts.as_mut().poll(cx),
        }
    }
}
