//! Mapping plexus errors onto gRPC statuses.

use plexus_core::ErrorKind;
use tonic::{Code, Status};

/// The gRPC code for a portable error kind.
pub fn code_for(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::InvalidArgument => Code::InvalidArgument,
        ErrorKind::DeadlineExceeded => Code::DeadlineExceeded,
        ErrorKind::Cancelled => Code::Cancelled,
        ErrorKind::ResourceExhausted => Code::ResourceExhausted,
        ErrorKind::Unauthenticated => Code::Unauthenticated,
        ErrorKind::PermissionDenied => Code::PermissionDenied,
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::Unavailable => Code::Unavailable,
        _ => Code::Internal,
    }
}

/// A status carrying a plexus error's message, with the code of its kind.
pub fn from_error(error: &plexus_core::Error) -> Status {
    Status::new(code_for(error.kind()), error.to_string())
}

/// The trailers that end a stream with `status`.
pub fn trailers(status: &Status) -> http::HeaderMap {
    let mut trailers = http::HeaderMap::new();
    if status.add_header(&mut trailers).is_err() {
        // Only a message that cannot be percent-encoded fails; keep the code.
        let fallback = Status::new(status.code(), "");
        let _ = fallback.add_header(&mut trailers);
    }
    trailers
}
