//! How `plexus call` fails: what it prints and the exit code of each kind.

use std::fmt;

use tonic::{Code, Status};

/// A reason `plexus call` stops without success.
#[derive(Debug)]
pub enum Failure {
    /// The arguments or the input are wrong (exit code 2).
    Usage(String),
    /// The server cannot be used: unreachable, TLS failed, or no reflection
    /// (exit code 3).
    Unusable(String),
    /// A call ended with a gRPC status other than OK (exit code 1).
    Status(Status),
    /// A REST route answered with an HTTP error (exit code 1).
    Http {
        /// The HTTP status.
        status: u16,
        /// The gRPC code name the gateway reported, if any.
        code: Option<String>,
        /// The error message.
        message: String,
    },
    /// Standard output was closed by its reader (`| head -1`): stop quietly
    /// (exit code 0).
    OutputClosed,
}

impl Failure {
    /// A wrong argument or input.
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::Usage(message.into())
    }

    /// A server that cannot be used.
    pub fn unusable(message: impl Into<String>) -> Failure {
        Failure::Unusable(message.into())
    }

    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::OutputClosed => 0,
            Failure::Status(_) | Failure::Http { .. } => 1,
            Failure::Usage(_) => 2,
            Failure::Unusable(_) => 3,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(message) | Failure::Unusable(message) => write!(f, "error: {message}"),
            Failure::Status(status) => {
                write!(
                    f,
                    "ERROR: {}: {}",
                    code_name(status.code()),
                    status.message()
                )
            }
            Failure::Http {
                status,
                code,
                message,
            } => match code {
                Some(code) => write!(f, "ERROR: HTTP {status} {code}: {message}"),
                None => write!(f, "ERROR: HTTP {status}: {message}"),
            },
            Failure::OutputClosed => write!(f, "standard output was closed"),
        }
    }
}

impl From<Status> for Failure {
    fn from(status: Status) -> Failure {
        Failure::Status(status)
    }
}

/// The canonical gRPC name of `code`, as in the gRPC specification
/// (`DEADLINE_EXCEEDED`).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// `error` and its sources, joined with `: `, each said once.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_print_their_canonical_code_name() {
        let failure = Failure::from(Status::deadline_exceeded("too slow"));
        assert_eq!(failure.to_string(), "ERROR: DEADLINE_EXCEEDED: too slow");
        assert_eq!(failure.exit_code(), 1);
        assert_eq!(code_name(Code::Unauthenticated), "UNAUTHENTICATED");
    }

    #[test]
    fn exit_codes_tell_the_kinds_apart() {
        assert_eq!(Failure::usage("x").exit_code(), 2);
        assert_eq!(Failure::unusable("x").exit_code(), 3);
    }
}
