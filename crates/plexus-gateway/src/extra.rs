//! Extra axum routes served by the gateway beside its transcoded ones,
//! behind the same per-request handling
//! ([`GatewayBuilder::extra_routes`](crate::GatewayBuilder::extra_routes)).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::CONTENT_LENGTH;
use pin_project_lite::pin_project;
use plexus_core::Deadline;
use plexus_rpc::CallContext;
use tokio::task::futures::TaskLocalFuture;
use tokio::time::Sleep;
use tonic::Code;
use tower_layer::Layer;
use tower_service::Service;

use crate::context;
use crate::http_error::ApiError;
use crate::server::Shared;
use crate::slots::Slot;

/// `routes`, each behind the gateway's handling (see [`Around`]); the body
/// limit also bounds axum's body extractors (`Bytes`, `Json`, …).
pub(crate) fn wrap(routes: Router, shared: Arc<Shared>) -> Router {
    if !routes.has_routes() {
        // axum refuses a route layer on a router without routes.
        return routes;
    }
    let limit = shared.config.max_body_bytes;
    routes
        .route_layer(AroundLayer { shared })
        .route_layer(DefaultBodyLimit::max(limit))
}

/// Makes [`Around`] services.
#[derive(Clone)]
struct AroundLayer {
    shared: Arc<Shared>,
}

impl<S> Layer<S> for AroundLayer {
    type Service = Around<S>;

    fn layer(&self, inner: S) -> Around<S> {
        Around {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// Takes a request slot, refuses a declared body over the limit, reads the
/// deadline and trace headers, and runs the handler inside the call's
/// [`CallContext`] until it answers or the deadline passes (504).
#[derive(Clone)]
struct Around<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> Service<Request> for Around<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = AroundFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match enter(&self.shared, &request) {
            Ok((slot, deadline, ctx)) => AroundFuture::Running {
                inner: ctx.scope(self.inner.call(request)),
                deadline,
                sleep: None,
                slot: Some(slot),
            },
            Err(error) => AroundFuture::Refused {
                response: Some(error.into_response()),
            },
        }
    }
}

pin_project! {
    /// The answer of [`Around`]: the refusal, or the handler's answer (504
    /// past the deadline); the request slot is given back as soon as the
    /// handler is done. The deadline's timer is armed only once the
    /// handler has had to wait.
    #[project = AroundProjection]
    enum AroundFuture<F> {
        Refused { response: Option<Response> },
        Running {
            #[pin]
            inner: TaskLocalFuture<CallContext, F>,
            deadline: Deadline,
            sleep: Option<Pin<Box<Sleep>>>,
            slot: Option<Slot>,
        },
    }
}

impl<F: Future<Output = Result<Response, Infallible>>> Future for AroundFuture<F> {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            AroundProjection::Refused { response } => Poll::Ready(Ok(response
                .take()
                .unwrap_or_else(|| expired().into_response()))),
            AroundProjection::Running {
                inner,
                deadline,
                sleep,
                slot,
            } => {
                if let Poll::Ready(answer) = inner.poll(cx) {
                    slot.take();
                    return Poll::Ready(match answer {
                        Ok(response) => Ok(response),
                        Err(never) => match never {},
                    });
                }
                let sleep = sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline.instant())));
                ready!(sleep.as_mut().poll(cx));
                slot.take();
                Poll::Ready(Ok(expired().into_response()))
            }
        }
    }
}

fn enter(shared: &Shared, request: &Request) -> Result<(Slot, Deadline, CallContext), ApiError> {
    let now = tokio::time::Instant::now();
    let slot = shared.requests.try_take().ok_or_else(|| {
        ApiError::new(
            Code::Unavailable,
            format!(
                "the gateway is serving its limit of {} requests; retry shortly",
                shared.config.max_concurrent_requests
            ),
        )
    })?;
    let limit = shared.config.max_body_bytes;
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::new(
            Code::ResourceExhausted,
            format!("request body is larger than the gateway's limit of {limit} bytes"),
        )
        .with_status(StatusCode::PAYLOAD_TOO_LARGE));
    }
    let deadline = context::deadline_at(request.headers(), &shared.config, false, now)?;
    if deadline.is_expired() {
        return Err(expired());
    }
    let trace = context::trace(request.headers());
    tracing::debug!(
        http.method = %request.method(),
        http.path = %request.uri().path(),
        trace_id = %trace.trace_id(),
        span_id = %trace.span_id(),
        "gateway.request"
    );
    Ok((slot, deadline, CallContext::new(Some(deadline), trace)))
}

fn expired() -> ApiError {
    ApiError::new(
        Code::DeadlineExceeded,
        "the request's deadline passed before it was answered",
    )
}
