//! The error type of `plexus-rpc`.

use plexus_core::ErrorKind;

/// Errors from setting up or running servers and clients. Failures of
/// individual calls are [`tonic::Status`] values instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server could not listen on its address.
    #[error("cannot listen on {addr}: {source}; is another process using the port?")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A certificate, key or TLS setting is unusable.
    #[error("TLS configuration: {reason}")]
    Tls {
        /// What is wrong and what to supply instead.
        reason: String,
    },
    /// An endpoint address could not be used.
    #[error("invalid endpoint `{uri}`: {reason}")]
    InvalidUri {
        /// The address as given.
        uri: String,
        /// What is wrong and what is expected instead.
        reason: String,
    },
    /// Connecting to an endpoint failed.
    #[error("cannot connect to {uri}: {source}")]
    Connect {
        /// The endpoint.
        uri: String,
        /// The transport's error.
        #[source]
        source: tonic::transport::Error,
    },
    /// The server's accept loop failed.
    #[error("server stopped: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The portable kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Tls { .. } | Error::InvalidUri { .. } => ErrorKind::InvalidArgument,
            Error::Bind { .. } | Error::Connect { .. } | Error::Io(_) => ErrorKind::Unavailable,
        }
    }

    pub(crate) fn tls(reason: impl Into<String>) -> Self {
        Error::Tls {
            reason: reason.into(),
        }
    }
}
