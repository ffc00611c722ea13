//! [`CircuitOpen`]: the rejection of a call by an open circuit.

use std::time::Duration;

use http::StatusCode;
use tokio::time::Instant;
use tonic::Status;
use tonic::metadata::{MetadataMap, MetadataValue};

/// The metadata key marking a gRPC status as a circuit breaker's
/// rejection, so that a retry layer above does not retry it.
pub const CIRCUIT_METADATA: &str = "plexus-circuit";

/// A call rejected without being sent, because its circuit is open (or
/// half-open with all its probes in flight).
///
/// gRPC calls get it as a `tonic::Status` with code `UNAVAILABLE`
/// ([`to_status`](Self::to_status)); HTTP calls get this error, which maps
/// to `503 Service Unavailable` with a `Retry-After`
/// ([`http_status`](Self::http_status), [`retry_after`](Self::retry_after)).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct CircuitOpen {
    message: String,
    until: Option<Instant>,
}

impl CircuitOpen {
    pub(crate) fn new(message: String, until: Option<Instant>) -> Self {
        CircuitOpen { message, until }
    }

    /// When the cool-down ends and probes are let through; `None` while
    /// the circuit is half-open and waiting on its probes.
    pub fn until(&self) -> Option<Instant> {
        self.until
    }

    /// How long until the cool-down ends (zero when half-open): what an
    /// HTTP `Retry-After` says, rounded up to whole seconds.
    pub fn retry_after(&self) -> Duration {
        self.until.map_or(Duration::ZERO, |u| {
            u.saturating_duration_since(Instant::now())
        })
    }

    /// The HTTP status for this rejection: 503.
    pub fn http_status(&self) -> StatusCode {
        StatusCode::SERVICE_UNAVAILABLE
    }

    /// The gRPC status for this rejection: `UNAVAILABLE` with this message,
    /// marked with [`CIRCUIT_METADATA`].
    pub fn to_status(&self) -> Status {
        let mut metadata = MetadataMap::new();
        metadata.insert(CIRCUIT_METADATA, MetadataValue::from_static("open"));
        Status::with_metadata(tonic::Code::Unavailable, self.message.clone(), metadata)
    }

    /// Whether `status` is a circuit breaker's rejection.
    pub fn is_rejection(status: &Status) -> bool {
        status.metadata().contains_key(CIRCUIT_METADATA)
    }
}
