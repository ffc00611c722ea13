//! [`GatewayConfig`]: every bound the gateway enforces.

use std::time::Duration;

use http::HeaderName;

/// The bounds and options of a [`Gateway`](crate::Gateway). Start from
/// [`Default`] and change the fields you need.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GatewayConfig {
    /// Open client connections at once; past it the gateway stops
    /// accepting until one closes (the kernel backlog holds the rest).
    /// Default 4,096.
    pub max_connections: usize,
    /// Largest request body, in bytes; a larger one is answered 413 with a
    /// JSON error. Default 4 MiB.
    pub max_body_bytes: usize,
    /// Largest upstream response message, in bytes; a larger one fails the
    /// call with `RESOURCE_EXHAUSTED`. Default 4 MiB.
    pub max_response_message_bytes: usize,
    /// Requests being served at once (unary calls, and streams while they
    /// start); past it, requests are answered 503 `UNAVAILABLE` at once.
    /// Default 1,024.
    pub max_concurrent_requests: usize,
    /// Server-streaming responses (SSE or NDJSON) open at once; past it, a
    /// new stream is answered 503 `UNAVAILABLE`. Default 256.
    pub max_concurrent_streams: usize,
    /// Deadline of a unary call whose request carries no timeout header.
    /// Default 30 s.
    pub default_timeout: Duration,
    /// Deadline of a stream whose request carries no timeout header: the
    /// stream ends with a `DEADLINE_EXCEEDED` error event then. Default 10 min.
    pub default_stream_timeout: Duration,
    /// Longest deadline a request may ask for; longer ones are shortened
    /// to it. Default 1 h.
    pub max_timeout: Duration,
    /// Writes fields that hold their default value (`0`, `""`, `[]`) in
    /// responses instead of leaving them out. Default false (the proto3
    /// JSON default).
    pub emit_unpopulated: bool,
    /// Request headers passed on to the upstream call as gRPC metadata, e.g.
    /// `authorization`. Default none. (Deadline and trace context are
    /// always carried; see the crate documentation.)
    pub forward_headers: Vec<HeaderName>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            max_connections: 4096,
            max_body_bytes: 4 * 1024 * 1024,
            max_response_message_bytes: 4 * 1024 * 1024,
            max_concurrent_requests: 1024,
            max_concurrent_streams: 256,
            default_timeout: Duration::from_secs(30),
            default_stream_timeout: Duration::from_secs(600),
            max_timeout: Duration::from_secs(3600),
            emit_unpopulated: false,
            forward_headers: Vec::new(),
        }
    }
}
