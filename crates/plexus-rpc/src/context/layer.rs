//! [`ContextLayer`] and its service, [`Context`].

use std::task::{Context as TaskContext, Poll};

use http::{Request, Response};
use plexus_core::deadline::parse_grpc_timeout;
use plexus_core::{Deadline, TraceContext};
use tonic::Status;
use tonic::body::Body;
use tower_layer::Layer;
use tower_service::Service;

use super::future::ResponseFuture;
use super::{CallContext, ContextBody};
use crate::headers::{GRPC_TIMEOUT, TRACEPARENT};

/// Installs a [`CallContext`] on every incoming call. See the [module docs](super).
#[derive(Debug, Clone, Copy, Default)]
pub struct ContextLayer {
    _priv: (),
}

impl ContextLayer {
    /// The layer.
    pub fn new() -> Self {
        ContextLayer { _priv: () }
    }
}

impl<S> Layer<S> for ContextLayer {
    type Service = Context<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Context { inner }
    }
}

/// The service of [`ContextLayer`].
#[derive(Debug, Clone)]
pub struct Context<S> {
    inner: S,
}

impl<S, B> Service<Request<Body>> for Context<S>
where
    S: Service<Request<Body>, Response = Response<B>>,
{
    type Response = Response<ContextBody<B>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        let deadline = match read_deadline(&req) {
            Ok(deadline) => deadline,
            Err(status) => return ResponseFuture::rejected(status),
        };
        if deadline.is_some_and(|d| d.is_expired()) {
            return ResponseFuture::rejected(Status::deadline_exceeded(format!(
                "deadline of {} had already passed when the call arrived; the handler was not run",
                req.uri().path()
            )));
        }
        let ctx = CallContext::incoming(deadline, read_traceparent(&req));
        // The fields are only evaluated when the span is enabled.
        let span = tracing::info_span!(
            "rpc.server",
            rpc.method = %req.uri().path(),
            trace_id = %ctx.trace().trace_id(),
            span_id = %ctx.trace().span_id(),
            parent_span_id = ctx.parent_trace().map(|p| p.span_id()).unwrap_or_default(),
        );
        req.extensions_mut().insert(ctx.clone());
        let fut = {
            let _entered = span.enter();
            self.inner.call(req)
        };
        ResponseFuture::new(fut, ctx, span)
    }
}

fn read_deadline(req: &Request<Body>) -> Result<Option<Deadline>, Status> {
    let Some(value) = req.headers().get(&GRPC_TIMEOUT) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| {
        Status::invalid_argument("grpc-timeout header is not ASCII; expected e.g. `250m`")
    })?;
    let budget = parse_grpc_timeout(text).map_err(|e| Status::invalid_argument(e.to_string()))?;
    Ok(Some(Deadline::after(budget)))
}

fn read_traceparent(req: &Request<Body>) -> Option<TraceContext> {
    let value = req.headers().get(&TRACEPARENT)?.to_str().ok()?;
    match TraceContext::parse(value) {
        Ok(ctx) => Some(ctx),
        Err(e) => {
            // W3C: an invalid traceparent is ignored and a new trace starts.
            tracing::debug!(error = %e, "ignoring invalid traceparent");
            None
        }
    }
}
