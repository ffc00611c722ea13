//! [`PropagateLayer`]: carries deadline, trace context and credentials onto
//! outgoing calls.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use pin_project_lite::pin_project;
use plexus_core::Deadline;
use plexus_core::deadline::parse_grpc_timeout;
use tokio::time::Sleep;
use tonic::Status;
use tonic::body::Body;
use tower_layer::Layer;
use tower_service::Service;

use super::cancel;
use crate::context::CallContext;
use crate::headers::{GRPC_TIMEOUT, TRACEPARENT};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// For every outgoing call:
///
/// - the deadline is the earlier of the current call's deadline
///   ([`CallContext::current`]) and any `grpc-timeout` the request already
///   has; it is sent as the remaining budget and enforced locally (the call
///   fails with `DEADLINE_EXCEEDED` when it passes). A call whose deadline
///   has already passed is not sent at all;
/// - the current trace is continued with a new span id in `traceparent`;
/// - the configured `authorization` header is added;
/// - dropping the call (its response future or response stream) ends the
///   request stream, so the server sees the cancellation at once.
#[derive(Debug, Clone, Default)]
pub struct PropagateLayer {
    authorization: Option<HeaderValue>,
}

impl PropagateLayer {
    /// The layer, with no credentials.
    pub fn new() -> Self {
        PropagateLayer::default()
    }

    /// Adds this `authorization` header to every call that has none.
    pub fn authorization(mut self, value: HeaderValue) -> Self {
        let mut value = value;
        value.set_sensitive(true);
        self.authorization = Some(value);
        self
    }
}

impl<S> Layer<S> for PropagateLayer {
    type Service = Propagate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Propagate {
            inner,
            authorization: self.authorization.clone(),
        }
    }
}

/// The service of [`PropagateLayer`].
#[derive(Debug, Clone)]
pub struct Propagate<S> {
    inner: S,
    authorization: Option<HeaderValue>,
}

impl<S, R> Service<Request<Body>> for Propagate<S>
where
    S: Service<Request<Body>, Response = Response<R>>,
    S::Error: Into<BoxError>,
    R: http_body::Body<Data = Bytes> + Send + 'static,
    R::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let (held, dropped) = cancel::pair();
        let mut req = req.map(|body| Body::new(cancel::RequestBody::new(body, dropped)));
        let current = CallContext::current();
        let requested = req
            .headers()
            .get(&GRPC_TIMEOUT)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_grpc_timeout(v).ok())
            .map(Deadline::after);
        let deadline =
            Deadline::earliest(current.as_ref().and_then(CallContext::deadline), requested);
        if let Some(deadline) = deadline {
            if deadline.is_expired() {
                return ResponseFuture::expired(req.uri().path());
            }
            if let Ok(value) = HeaderValue::try_from(deadline.to_grpc_timeout()) {
                req.headers_mut().insert(GRPC_TIMEOUT.clone(), value);
            }
        }
        if let Some(ctx) = &current
            && !req.headers().contains_key(&TRACEPARENT)
        {
            let span = ctx.trace().child();
            tracing::debug!(
                rpc.method = %req.uri().path(),
                trace_id = %span.trace_id(),
                span_id = %span.span_id(),
                "rpc.client"
            );
            if let Ok(value) = HeaderValue::try_from(span.to_traceparent()) {
                req.headers_mut().insert(TRACEPARENT.clone(), value);
            }
        }
        if let Some(auth) = &self.authorization
            && !req.headers().contains_key(http::header::AUTHORIZATION)
        {
            req.headers_mut()
                .insert(http::header::AUTHORIZATION, auth.clone());
        }
        ResponseFuture {
            state: State::Sent {
                inner: self.inner.call(req),
                sleep: deadline.map(|d| Box::pin(tokio::time::sleep_until(d.instant()))),
                held: Some(held),
            },
        }
    }
}

/// Gives transport failures the status gRPC defines for them: tonic's
/// channel reports its own `grpc-timeout` expiry as `CANCELLED` (a passed
/// deadline is `DEADLINE_EXCEEDED`) and connection failures as `UNKNOWN`
/// (they are `UNAVAILABLE`, with the cause spelled out).
fn transport_status(error: BoxError) -> BoxError {
    if error.is::<Status>() {
        return error;
    }
    let mut causes = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error.as_ref());
    while let Some(e) = source {
        if e.is::<tonic::TimeoutExpired>() {
            return Status::deadline_exceeded("deadline passed while waiting for the response")
                .into();
        }
        let text = e.to_string();
        if causes.last() != Some(&text) {
            causes.push(text);
        }
        source = e.source();
    }
    Status::unavailable(format!(
        "the call could not be completed: {}",
        causes.join(": ")
    ))
    .into()
}

pin_project! {
    /// The response future of [`Propagate`].
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Expired { status: Option<Status> },
        Sent {
            #[pin]
            inner: F,
            sleep: Option<Pin<Box<Sleep>>>,
            held: Option<cancel::Held>,
        },
    }
}

impl<F> ResponseFuture<F> {
    fn expired(path: &str) -> Self {
        ResponseFuture {
            state: State::Expired {
                status: Some(Status::deadline_exceeded(format!(
                    "deadline passed before {path} was sent; the call was not made"
                ))),
            },
        }
    }
}

impl<F, R, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<R>, E>>,
    E: Into<BoxError>,
    R: http_body::Body<Data = Bytes> + Send + 'static,
    R::Error: Into<BoxError>,
{
    type Output = Result<Response<Body>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Expired { status } => {
                let status = status
                    .take()
                    .expect("ResponseFuture polled after completion");
                Poll::Ready(Err(status.into()))
            }
            StateProj::Sent { inner, sleep, held } => {
                if let Poll::Ready(result) = inner.poll(cx) {
                    let held = held.take().expect("ResponseFuture polled after completion");
                    return Poll::Ready(match result {
                        // Most calls (unary, server streaming) have sent their
                        // whole request by now: nothing left to cancel, and no
                        // need to wrap every frame of the response.
                        Ok(response) if held.is_moot() => Ok(response.map(Body::new)),
                        Ok(response) => {
                            Ok(response
                                .map(|body| Body::new(cancel::ResponseBody::new(body, held))))
                        }
                        Err(e) => Err(transport_status(e.into())),
                    });
                }
                if let Some(sleep) = sleep
                    && sleep.as_mut().poll(cx).is_ready()
                {
                    return Poll::Ready(Err(Status::deadline_exceeded(
                        "deadline passed while waiting for the response",
                    )
                    .into()));
                }
                Poll::Pending
            }
        }
    }
}
