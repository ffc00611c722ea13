//! Errors of the balancer.

/// A balancer could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BalanceError {
    /// No endpoint was given.
    #[error("a balancer needs at least one endpoint; add one with `endpoint(..)`")]
    NoEndpoints,
    /// More endpoints than the configured bound.
    #[error(
        "{count} endpoints given, more than max_endpoints ({max}); raise the bound or split the group"
    )]
    TooManyEndpoints {
        /// Endpoints given.
        count: usize,
        /// The bound.
        max: usize,
    },
    /// Two endpoints have the same key.
    #[error("endpoint key {0} is given twice; keys must be distinct")]
    DuplicateKey(String),
}

/// A call rejected because every endpoint is unhealthy. gRPC calls get
/// `UNAVAILABLE` with this message instead.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "no healthy endpoint: all {endpoints} endpoints failed their health checks (last: {last_error})"
)]
pub struct NoHealthyEndpoint {
    pub(crate) endpoints: usize,
    pub(crate) last_error: String,
}
