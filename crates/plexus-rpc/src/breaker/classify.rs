//! Which outcomes count as failures of the callee.

use http::{HeaderMap, Response};
use tonic::{Code, Status};

use super::CircuitOpen;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An outcome as the circuit counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Success,
    Failure,
    /// Says nothing about the callee (the caller cancelled, or a breaker
    /// below rejected the call).
    Ignored,
}

/// gRPC codes that mean the callee is failing, not the caller.
fn failing(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Internal
            | Code::Unknown
            | Code::DataLoss
            | Code::ResourceExhausted
    )
}

/// The outcome of a call: gRPC by the status sent with the response
/// headers (a status arriving later in the trailers is not seen), HTTP by
/// its status (5xx is a failure), errors by their gRPC code or as
/// transport failures.
pub(crate) fn outcome<R>(grpc: bool, result: &Result<Response<R>, BoxError>) -> Outcome {
    match result {
        Ok(response) if grpc => grpc_headers(response.headers()),
        Ok(response) if response.status().is_server_error() => Outcome::Failure,
        Ok(_) => Outcome::Success,
        Err(error) => {
            if error.is::<CircuitOpen>() {
                return Outcome::Ignored;
            }
            match error.downcast_ref::<Status>() {
                Some(status) if CircuitOpen::is_rejection(status) => Outcome::Ignored,
                Some(status) if status.code() == Code::Cancelled => Outcome::Ignored,
                Some(status) if !failing(status.code()) => Outcome::Success,
                _ => Outcome::Failure,
            }
        }
    }
}

fn grpc_headers(headers: &HeaderMap) -> Outcome {
    let code = headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(Code::from);
    match code {
        Some(code) if failing(code) => Outcome::Failure,
        Some(Code::Cancelled) => Outcome::Ignored,
        _ => Outcome::Success,
    }
}
