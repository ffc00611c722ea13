//! The error type of the gateway's setup: descriptors, bindings, listening.
//!
//! Errors of individual HTTP requests are answered as JSON bodies instead
//! (see [`ApiError`](crate::ApiError)).

use plexus_core::ErrorKind;

/// Why a gateway could not be built or started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes passed as a `FileDescriptorSet` could not be read.
    #[error(
        "invalid file descriptor set: {source}; pass the encoded FileDescriptorSet of the protos (e.g. from protox::compile)"
    )]
    Descriptors {
        /// What prost-reflect reported.
        #[source]
        source: prost_reflect::DescriptorError,
    },
    /// The descriptors do not define `google.api.http`.
    #[error(
        "the descriptor sets do not define the google.api.http option; compile the protos with google/api/annotations.proto on the include path"
    )]
    MissingAnnotations,
    /// An upstream names a service the descriptors do not define.
    #[error(
        "unknown service `{service}`: no descriptor set passed to the gateway defines it{known}"
    )]
    UnknownService {
        /// The fully qualified service name as configured.
        service: String,
        /// The services that are known, as a sentence suffix.
        known: String,
    },
    /// A service has an upstream but no method with a `google.api.http` option.
    #[error(
        "service `{service}` has no method annotated with google.api.http; nothing to expose. If its protos do have the option, the descriptor set lost it: encode the set with protox::Compiler::encode_file_descriptor_set or protoc --include_imports -o (prost_types::FileDescriptorSet drops extension options)"
    )]
    NothingToExpose {
        /// The fully qualified service name.
        service: String,
    },
    /// A method's `google.api.http` option cannot be served.
    #[error("invalid google.api.http binding `{binding}` of {method}: {reason}")]
    InvalidBinding {
        /// The fully qualified method name.
        method: String,
        /// The binding as written, e.g. `GET /v1/orders/{order_id}`.
        binding: String,
        /// What is wrong and what to write instead.
        reason: String,
    },
    /// Two bindings claim the same HTTP method and path template.
    #[error("{first} and {second} are both bound to {binding}; give one of them another path")]
    DuplicateRoute {
        /// The HTTP method and template, e.g. `GET /v1/orders/{id}`.
        binding: String,
        /// The method bound first.
        first: String,
        /// The method bound second.
        second: String,
    },
    /// An upstream address could not be used.
    #[error("upstream of `{service}`: {source}")]
    Upstream {
        /// The fully qualified service name.
        service: String,
        /// Why the channel could not be made.
        #[source]
        source: plexus_rpc::Error,
    },
    /// The listening socket could not be opened or served.
    #[error("gateway socket error on {addr}: {source}")]
    Io {
        /// The address being bound or served.
        addr: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The portable kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Io { .. } => ErrorKind::Unavailable,
            Error::Upstream { source, .. } => source.kind(),
            _ => ErrorKind::InvalidArgument,
        }
    }
}
