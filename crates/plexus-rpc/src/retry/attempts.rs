//! The attempts of one retried call: buffer the body, send, judge the
//! outcome, wait, send again — never past the call's deadline.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Request, Response};
use plexus_core::Deadline;
use plexus_core::deadline::TIMEOUT_HEADER;
use tokio::time::Instant;
use tonic::Status;
use tower::ServiceExt;
use tower::retry::budget::Budget;
use tower_service::Service;

use super::RetryPolicy;
use super::body::{Buffered, ReplayBody, buffer};
use super::classify::{self, Verdict};
use crate::headers::GRPC_TIMEOUT;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One call as the retry layer sees it.
pub(crate) struct Call {
    pub(crate) policy: Arc<RetryPolicy>,
    pub(crate) grpc: bool,
    /// The call's deadline: the current call's, or the request's own
    /// timeout header, whichever is earlier.
    pub(crate) deadline: Option<Deadline>,
}

impl Call {
    /// Sends `request` on `service` (already ready) until an attempt
    /// succeeds, fails in a way not worth retrying, or the attempts, the
    /// budget or the deadline run out.
    pub(crate) async fn run<S, B, R>(
        self,
        mut service: S,
        request: Request<B>,
    ) -> Result<Response<R>, BoxError>
    where
        S: Service<Request<B>, Response = Response<R>>,
        S::Error: Into<BoxError>,
        B: ReplayBody,
        B::Error: Into<BoxError>,
    {
        let (parts, body) = request.into_parts();
        let limit = self.policy.max_replay_bytes;
        let buffered = match self.deadline {
            Some(deadline) => tokio::time::timeout_at(deadline.instant(), buffer(body, limit))
                .await
                .map_err(|_| self.expired(parts.uri.path(), "while the request was being read"))?,
            None => buffer(body, limit).await,
        }
        .map_err(Into::into)?;
        let replay = match buffered {
            Buffered::Whole(replay) => replay,
            Buffered::TooLarge(chain) => {
                tracing::debug!(
                    rpc.method = %parts.uri.path(),
                    limit,
                    "request body over max_replay_bytes: sent once, never retried"
                );
                let request = Request::from_parts(parts, B::chain(chain));
                return self.attempt(&mut service, request, self.deadline).await;
            }
        };
        let policy = Arc::clone(&self.policy);
        let mut retries = 0u32;
        loop {
            let attempt_deadline = Deadline::earliest(
                self.deadline,
                policy.per_attempt_timeout.map(Deadline::after),
            );
            let request = Request::from_parts(parts.clone(), B::replay(replay.clone()));
            if retries > 0 {
                service.ready().await.map_err(Into::into)?;
            }
            let result = self.attempt(&mut service, request, attempt_deadline).await;
            let (after, room) = match classify::outcome(self.grpc, &result) {
                Verdict::Done => return result,
                Verdict::Retry { after } => (after, Duration::ZERO),
                Verdict::RetryIfRoom => (None, policy.per_attempt_timeout.unwrap_or_default()),
            };
            if retries + 1 >= policy.max_attempts {
                tracing::debug!(rpc.method = %parts.uri.path(), attempts = retries + 1, "retry: attempts used up");
                return result;
            }
            let delay = after.unwrap_or_else(|| policy.backoff.delay(retries + 1));
            if let Some(deadline) = self.deadline
                && Instant::now() + delay + room >= deadline.instant()
            {
                tracing::debug!(
                    rpc.method = %parts.uri.path(),
                    ?delay,
                    remaining = ?deadline.remaining(),
                    "retry skipped: it would start after the deadline"
                );
                return result;
            }
            if !policy.budget.withdraw() {
                tracing::debug!(rpc.method = %parts.uri.path(), "retry skipped: retry budget exhausted");
                return result;
            }
            drop(result);
            tokio::time::sleep(delay).await;
            retries += 1;
        }
    }

    /// Sends one attempt carrying what is left of `deadline`, and gives up
    /// on it when that passes. An attempt whose deadline has already
    /// passed is not sent.
    async fn attempt<S, B, R>(
        &self,
        service: &mut S,
        mut request: Request<B>,
        deadline: Option<Deadline>,
    ) -> Result<Response<R>, BoxError>
    where
        S: Service<Request<B>, Response = Response<R>>,
        S::Error: Into<BoxError>,
    {
        let Some(deadline) = deadline else {
            return service.call(request).await.map_err(Into::into);
        };
        if deadline.is_expired() {
            return Err(self.expired(request.uri().path(), "before the call was sent"));
        }
        let (name, value) = if self.grpc {
            (GRPC_TIMEOUT.clone(), deadline.to_grpc_timeout())
        } else {
            (
                http::HeaderName::from_static(TIMEOUT_HEADER),
                deadline.to_timeout_ms(),
            )
        };
        if let Ok(value) = HeaderValue::try_from(value) {
            request.headers_mut().insert(name, value);
        }
        let path = request.uri().path().to_owned();
        match tokio::time::timeout_at(deadline.instant(), service.call(request)).await {
            Ok(result) => result.map_err(Into::into),
            Err(_) => Err(self.expired(&path, "while waiting for the response")),
        }
    }

    fn expired(&self, path: &str, when: &str) -> BoxError {
        if self.grpc {
            Status::deadline_exceeded(format!("deadline of {path} passed {when}")).into()
        } else {
            tower::timeout::error::Elapsed::new().into()
        }
    }
}
