//! The names of the headers plexus reads and writes on every call, built
//! once: looking a header up by `&str` parses the name on every lookup.

use http::HeaderName;
use plexus_core::deadline::GRPC_TIMEOUT_HEADER;
use plexus_core::trace::TRACEPARENT_HEADER;

/// `grpc-timeout`.
pub(crate) static GRPC_TIMEOUT: HeaderName = HeaderName::from_static(GRPC_TIMEOUT_HEADER);

/// `traceparent`.
pub(crate) static TRACEPARENT: HeaderName = HeaderName::from_static(TRACEPARENT_HEADER);
