//! Which outcomes of an attempt are worth another attempt.

use std::time::Duration;

use http::{HeaderMap, Response, StatusCode};
use tonic::{Code, Status};

use crate::breaker::CircuitOpen;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// gRPC's server pushback header (gRPC retry design A6): a non-negative
/// number of milliseconds to wait before retrying; anything else means
/// "do not retry".
pub const PUSHBACK_HEADER: &str = "grpc-retry-pushback-ms";

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Hand the outcome to the caller.
    Done,
    /// Retry, after the server's requested wait if it gave one.
    Retry { after: Option<Duration> },
    /// The attempt ran out of time: retry only if the call's deadline
    /// leaves room for another whole attempt.
    RetryIfRoom,
}

/// Whether a request is a gRPC call (`content-type: application/grpc…`).
pub(crate) fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// The verdict on an attempt's outcome.
pub(crate) fn outcome<R>(grpc: bool, result: &Result<Response<R>, BoxError>) -> Verdict {
    match result {
        Ok(response) if grpc => grpc_response(response.headers()),
        Ok(response) => http_response(response.status(), response.headers()),
        Err(error) => error_verdict(error.as_ref()),
    }
}

/// A gRPC response whose status came with its headers (a "trailers-only"
/// response, how servers answer a call that fails before any message).
/// A status that arrives later, in the trailers, is never retried: the
/// response has already been handed on.
fn grpc_response(headers: &HeaderMap) -> Verdict {
    let Some(code) = headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
    else {
        return Verdict::Done;
    };
    let pushback = match headers.get(PUSHBACK_HEADER) {
        None => None,
        Some(value) => match value.to_str().ok().and_then(|v| v.parse::<u64>().ok()) {
            Some(ms) => Some(Duration::from_millis(ms)),
            // The server asked not to be retried.
            None => return Verdict::Done,
        },
    };
    match Code::from(code) {
        Code::Unavailable => Verdict::Retry { after: pushback },
        // Overload or quota: retried only when the server says when.
        Code::ResourceExhausted if pushback.is_some() => Verdict::Retry { after: pushback },
        Code::DeadlineExceeded => Verdict::RetryIfRoom,
        _ => Verdict::Done,
    }
}

fn http_response(status: StatusCode, headers: &HeaderMap) -> Verdict {
    let retry_after = headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    match status {
        StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT => Verdict::Retry { after: None },
        StatusCode::SERVICE_UNAVAILABLE => Verdict::Retry { after: retry_after },
        StatusCode::TOO_MANY_REQUESTS if retry_after.is_some() => {
            Verdict::Retry { after: retry_after }
        }
        _ => Verdict::Done,
    }
}

fn error_verdict(error: &(dyn std::error::Error + Send + Sync + 'static)) -> Verdict {
    if error.is::<CircuitOpen>() {
        return Verdict::Done;
    }
    if error.is::<tower::timeout::error::Elapsed>() {
        return Verdict::RetryIfRoom;
    }
    if let Some(status) = error.downcast_ref::<Status>() {
        if CircuitOpen::is_rejection(status) {
            return Verdict::Done;
        }
        return match status.code() {
            Code::Unavailable => Verdict::Retry { after: None },
            Code::DeadlineExceeded => Verdict::RetryIfRoom,
            _ => Verdict::Done,
        };
    }
    // A transport failure (connection refused or reset): the call may or
    // may not have reached the server, which an idempotent call tolerates.
    Verdict::Retry { after: None }
}
