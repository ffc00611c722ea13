//! The error type of `plexus-core`.

use std::fmt;

/// A portable classification of an [`Error`], stable across crates and transports.
///
/// Every plexus crate maps its own errors onto these kinds, and the transports
/// map the kinds onto their own status codes (gRPC status, HTTP status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The caller supplied something invalid; retrying the same input fails again.
    InvalidArgument,
    /// The deadline passed before the work completed.
    DeadlineExceeded,
    /// The work was cancelled by its caller.
    Cancelled,
    /// A size, count or rate limit was exceeded.
    ResourceExhausted,
    /// The caller is not authenticated.
    Unauthenticated,
    /// The caller is authenticated but not allowed to do this.
    PermissionDenied,
    /// The named resource does not exist.
    NotFound,
    /// A dependency is unreachable; retrying later may succeed.
    Unavailable,
    /// A bug or broken invariant inside plexus or the application.
    Internal,
}

impl ErrorKind {
    /// The kind's name in `snake_case`, as used in logs and error bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::DeadlineExceeded => "deadline_exceeded",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::ResourceExhausted => "resource_exhausted",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Errors from the message model, deadlines, trace context and codecs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A message attribute is missing or malformed.
    #[error("invalid message attribute `{attribute}`: {reason}")]
    InvalidAttribute {
        /// The CloudEvents attribute (or `key`, `header`) at fault.
        attribute: &'static str,
        /// What is wrong and what is expected instead.
        reason: String,
    },
    /// A deadline could not be parsed from its wire form.
    #[error("invalid deadline `{value}` in {source_name}: {reason}")]
    InvalidDeadline {
        /// The header or field the value came from.
        source_name: &'static str,
        /// The value as received (truncated to 64 characters).
        value: String,
        /// What is wrong and what is expected instead.
        reason: &'static str,
    },
    /// A W3C `traceparent` value could not be parsed.
    #[error("invalid traceparent `{value}`: {reason}")]
    InvalidTraceparent {
        /// The value as received (truncated to 64 characters).
        value: String,
        /// What is wrong and what is expected instead.
        reason: &'static str,
    },
    /// A payload could not be encoded.
    #[error("cannot encode payload as {content_type}: {reason}")]
    Encode {
        /// The codec's content type.
        content_type: &'static str,
        /// Why the encoder failed.
        reason: String,
    },
    /// A payload could not be decoded.
    #[error("cannot decode payload as {content_type}: {reason}")]
    Decode {
        /// The codec's content type.
        content_type: &'static str,
        /// Why the decoder failed, naming the field where the codec knows it.
        reason: String,
    },
    /// The deadline passed before the work started or completed.
    #[error("deadline exceeded{}", context.as_deref().map(|c| format!(" while {c}")).unwrap_or_default())]
    DeadlineExceeded {
        /// What was being done when the deadline passed.
        context: Option<String>,
    },
}

impl Error {
    /// The portable kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidAttribute { .. }
            | Error::InvalidDeadline { .. }
            | Error::InvalidTraceparent { .. }
            | Error::Decode { .. } => ErrorKind::InvalidArgument,
            Error::Encode { .. } => ErrorKind::Internal,
            Error::DeadlineExceeded { .. } => ErrorKind::DeadlineExceeded,
        }
    }

    pub(crate) fn attribute(attribute: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidAttribute {
            attribute,
            reason: reason.into(),
        }
    }
}

/// Truncates a received value for inclusion in an error message.
pub(crate) fn excerpt(value: &str) -> String {
    const MAX: usize = 64;
    if value.len() <= MAX {
        return value.to_owned();
    }
    let mut end = MAX;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &value[..end])
}
