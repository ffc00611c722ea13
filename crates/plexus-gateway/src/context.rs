//! The deadline and trace context of a request, read from its HTTP headers.

use http::HeaderMap;
use plexus_core::deadline::{GRPC_TIMEOUT_HEADER, TIMEOUT_HEADER};
use plexus_core::trace::TRACEPARENT_HEADER;
use plexus_core::{Deadline, TraceContext};

use crate::config::GatewayConfig;
use crate::http_error::ApiError;

/// The request's deadline: from `plexus-timeout-ms` (whole milliseconds),
/// else `grpc-timeout` (gRPC format, e.g. `250m`), else the configured
/// default; never later than the configured maximum. A malformed header is
/// a 400 naming it.
pub(crate) fn deadline(
    headers: &HeaderMap,
    config: &GatewayConfig,
    streaming: bool,
) -> Result<Deadline, ApiError> {
    deadline_at(headers, config, streaming, tokio::time::Instant::now())
}

/// [`deadline`], with the time now already read.
pub(crate) fn deadline_at(
    headers: &HeaderMap,
    config: &GatewayConfig,
    streaming: bool,
    now: tokio::time::Instant,
) -> Result<Deadline, ApiError> {
    let header = |name: &str| -> Result<Option<&str>, ApiError> {
        headers
            .get(name)
            .map(|v| {
                v.to_str().map_err(|_| {
                    ApiError::bad_request(format!("header {name} is not visible ASCII"))
                })
            })
            .transpose()
    };
    let requested = if let Some(ms) = header(TIMEOUT_HEADER)? {
        Some(Deadline::from_timeout_ms(ms).map_err(|e| ApiError::bad_request(e.to_string()))?)
    } else if let Some(value) = header(GRPC_TIMEOUT_HEADER)? {
        Some(Deadline::from_grpc_timeout(value).map_err(|e| ApiError::bad_request(e.to_string()))?)
    } else {
        None
    };
    let default = if streaming {
        config.default_stream_timeout
    } else {
        config.default_timeout
    };
    let requested = requested.unwrap_or_else(|| Deadline::at(now + default));
    Ok(requested.min(Deadline::at(now + config.max_timeout)))
}

/// The gateway's span: a child of the request's `traceparent`, or the root
/// of a new trace when there is none or it is malformed (W3C: a malformed
/// `traceparent` is ignored).
pub(crate) fn trace(headers: &HeaderMap) -> TraceContext {
    headers
        .get(TRACEPARENT_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| TraceContext::parse(v).ok())
        .map_or_else(TraceContext::new_root, |parent| parent.child())
}
