//! Extra axum routes served by the gateway beside its transcoded ones,
//! behind the same per-request handling
//! ([`GatewayBuilder::extra_routes`](crate::GatewayBuilder::extra_routes)).

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::CONTENT_LENGTH;
use plexus_core::Deadline;
use plexus_rpc::CallContext;
use tokio::sync::OwnedSemaphorePermit;
use tonic::Code;

use crate::context;
use crate::http_error::ApiError;
use crate::server::Shared;

/// `routes`, each behind the gateway's handling (see [`around`]); the body
/// limit also bounds axum's body extractors (`Bytes`, `Json`, …).
pub(crate) fn wrap(routes: Router, shared: Arc<Shared>) -> Router {
    if !routes.has_routes() {
        // axum refuses a route layer on a router without routes.
        return routes;
    }
    let limit = shared.config.max_body_bytes;
    routes
        .route_layer(middleware::from_fn_with_state(shared, around))
        .route_layer(DefaultBodyLimit::max(limit))
}

/// Takes a request slot, refuses a declared body over the limit, reads the
/// deadline and trace headers, and runs the handler inside the call's
/// [`CallContext`] until it answers or the deadline passes (504).
async fn around(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let (slot, deadline, ctx) = match enter(&shared, &request) {
        Ok(entered) => entered,
        Err(error) => return error.into_response(),
    };
    let answer = tokio::time::timeout_at(deadline.instant(), ctx.scope(next.run(request))).await;
    drop(slot);
    answer.unwrap_or_else(|_| expired().into_response())
}

fn enter(
    shared: &Shared,
    request: &Request,
) -> Result<(OwnedSemaphorePermit, Deadline, CallContext), ApiError> {
    let slot = Arc::clone(&shared.requests)
        .try_acquire_owned()
        .map_err(|_| {
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
    let deadline = context::deadline(request.headers(), &shared.config, false)?;
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
