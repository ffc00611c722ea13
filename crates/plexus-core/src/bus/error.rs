//! [`BusError`]: what publishing and subscribing can fail with.

use crate::ErrorKind;

/// Errors of publishers, subscribers and deliveries. Each says which
/// topic or option and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    /// A topic name is not valid for the backend.
    #[error("invalid topic `{topic}`: {reason}")]
    InvalidTopic {
        /// The topic as given (truncated).
        topic: String,
        /// What the backend accepts.
        reason: String,
    },
    /// An option has a value the backend refuses.
    #[error("invalid {option}: {reason}")]
    InvalidOption {
        /// The option.
        option: &'static str,
        /// What is wrong and what is accepted.
        reason: String,
    },
    /// The backend does not offer what was asked.
    #[error("{backend} does not support {what}")]
    Unsupported {
        /// The backend's name.
        backend: String,
        /// The missing feature.
        what: String,
    },
    /// A message is larger than the backend accepts.
    #[error(
        "message `{id}` on topic `{topic}` is {size} bytes, over {backend}'s limit of {limit} bytes"
    )]
    TooLarge {
        /// The backend's name.
        backend: String,
        /// The topic.
        topic: String,
        /// The message id.
        id: String,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The backend holds as much as it may (a bounded queue is full) and
    /// did not accept the batch; retry later.
    #[error("topic `{topic}` is full: {reason}; retry later or let its consumers catch up")]
    Full {
        /// The topic.
        topic: String,
        /// Which bound was reached.
        reason: String,
    },
    /// The publisher or subscriber was closed.
    #[error("{backend} {what} is closed")]
    Closed {
        /// The backend's name.
        backend: String,
        /// `publisher` or `subscriber`.
        what: &'static str,
    },
    /// The backend is unreachable or failed; retrying later may succeed.
    #[error("{backend}: {reason}")]
    Backend {
        /// The backend's name.
        backend: String,
        /// What failed, with the backend's own error.
        reason: String,
    },
}

impl BusError {
    /// An [`InvalidOption`](Self::InvalidOption) error.
    pub fn invalid(option: &'static str, reason: impl Into<String>) -> Self {
        BusError::InvalidOption {
            option,
            reason: reason.into(),
        }
    }

    /// A [`Backend`](Self::Backend) error.
    pub fn backend(backend: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        BusError::Backend {
            backend: backend.into(),
            reason: reason.to_string(),
        }
    }

    /// The portable kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            BusError::InvalidTopic { .. } | BusError::InvalidOption { .. } => {
                ErrorKind::InvalidArgument
            }
            BusError::Unsupported { .. } => ErrorKind::InvalidArgument,
            BusError::TooLarge { .. } | BusError::Full { .. } => ErrorKind::ResourceExhausted,
            BusError::Closed { .. } => ErrorKind::Cancelled,
            BusError::Backend { .. } => ErrorKind::Unavailable,
        }
    }
}
