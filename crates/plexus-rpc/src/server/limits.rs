//! [`Limits`]: every bound the server enforces, explicit and configurable.

use std::time::Duration;

/// The bounds a [`Server`](super::Server) enforces. Nothing it holds grows
/// without one of these limits.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Limits {
    /// Open connections at once; past it the server stops accepting until
    /// one closes (the kernel backlog holds the rest). Default 4,096.
    pub max_connections: usize,
    /// Time a client has to complete the TLS handshake. Default 10 s.
    pub tls_handshake_timeout: Duration,
    /// Concurrent calls (HTTP/2 streams) per connection; a client queues
    /// calls past it. Default 256.
    pub max_concurrent_streams: u32,
    /// Total size of a call's request headers (HTTP/2 header list), in
    /// bytes. Larger requests are refused. Default 16 KiB. The refusal is
    /// HTTP/2's own: an HTTP 431 answer without a gRPC status (clients
    /// report it as `UNKNOWN`), and, for headers more than four times the
    /// limit, the whole connection is closed with `ENHANCE_YOUR_CALM`.
    pub max_header_list_size: u32,
    /// Largest request message, in bytes; larger ones are refused with
    /// `RESOURCE_EXHAUSTED`. Default 4 MiB. tonic's generated servers apply
    /// their own 4 MiB limit too: to go above it, raise
    /// `max_decoding_message_size` on the generated server as well.
    pub max_decoding_message_size: usize,
    /// Largest response message, in bytes; a larger one ends the call with
    /// `RESOURCE_EXHAUSTED`. Default 4 MiB.
    pub max_encoding_message_size: usize,
    /// Interval of HTTP/2 keepalive pings on an idle connection. Default 30 s.
    pub http2_keepalive_interval: Duration,
    /// Time to wait for a keepalive ping's answer before closing the
    /// connection. Default 10 s.
    pub http2_keepalive_timeout: Duration,
    /// Streams a client may open and reset before the server accepts them
    /// (HTTP/2 "rapid reset" protection); past it the connection is closed
    /// with `ENHANCE_YOUR_CALM`. Default 20.
    pub http2_max_pending_accept_reset_streams: usize,
    /// Streams the server may reset because of client protocol errors before
    /// it closes the connection. Default 1,024.
    pub http2_max_local_error_reset_streams: usize,
    /// Largest HTTP/2 frame payload accepted, in bytes. Default 16 KiB.
    pub http2_max_frame_size: u32,
    /// HTTP/2 flow-control window per stream, in bytes. Default 1 MiB.
    pub http2_initial_stream_window_size: u32,
    /// HTTP/2 flow-control window per connection, in bytes. Default 2 MiB.
    pub http2_initial_connection_window_size: u32,
    /// Bytes buffered per stream waiting to be sent. Default 400 KiB.
    pub http2_max_send_buffer_size: usize,
    /// Time open calls get to finish after shutdown begins; the rest are
    /// then cancelled. Default 30 s.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 4096,
            tls_handshake_timeout: Duration::from_secs(10),
            max_concurrent_streams: 256,
            max_header_list_size: 16 * 1024,
            max_decoding_message_size: 4 * 1024 * 1024,
            max_encoding_message_size: 4 * 1024 * 1024,
            http2_keepalive_interval: Duration::from_secs(30),
            http2_keepalive_timeout: Duration::from_secs(10),
            http2_max_pending_accept_reset_streams: 20,
            http2_max_local_error_reset_streams: 1024,
            http2_max_frame_size: 16 * 1024,
            http2_initial_stream_window_size: 1024 * 1024,
            http2_initial_connection_window_size: 2 * 1024 * 1024,
            http2_max_send_buffer_size: 400 * 1024,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}
