//! [`DeadlineLayer`]: a message whose deadline has passed is not handled.
//!
//! A message carries a deadline as the remaining budget when it was
//! published, in the [`TIMEOUT_HEADER`] header (whole milliseconds),
//! counted from its CloudEvents `time`: it expires at `time + budget`.

use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use futures::future::{Either, Ready, ready};
use plexus_core::Message;
use plexus_core::deadline::TIMEOUT_HEADER;
use tower::BoxError;

use super::{Incoming, Outgoing};

/// When `message` expires: its `time` plus the budget in its
/// [`TIMEOUT_HEADER`] header; `None` without one (or with one that is not
/// a whole number of milliseconds, which is treated as no deadline and
/// logged).
pub fn message_deadline(message: &Message) -> Option<SystemTime> {
    let value = message.header(TIMEOUT_HEADER)?;
    match value.trim().parse::<u64>() {
        Ok(ms) => Some(message.time() + Duration::from_millis(ms)),
        Err(_) => {
            tracing::warn!(
                id = message.id(),
                value,
                "ignoring a malformed {TIMEOUT_HEADER} header"
            );
            None
        }
    }
}

/// The error of a message handled after its deadline.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "message `{id}` expired {late:?} before it was handled (deadline from its {TIMEOUT_HEADER} header)"
)]
pub struct Expired {
    /// The message id.
    pub id: String,
    /// How long ago it expired.
    pub late: Duration,
}

/// Makes [`Deadline`] services.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeadlineLayer;

impl<S> tower::Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Deadline<S> {
        Deadline { inner }
    }
}

/// Answers [`Expired`] for a message past its deadline without calling
/// the handler.
#[derive(Debug, Clone)]
pub struct Deadline<S> {
    inner: S,
}

impl<S> tower::Service<Incoming> for Deadline<S>
where
    S: tower::Service<Incoming, Response = Vec<Outgoing>, Error = BoxError>,
{
    type Response = Vec<Outgoing>;
    type Error = BoxError;
    type Future = Either<Ready<Result<Vec<Outgoing>, BoxError>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, incoming: Incoming) -> Self::Future {
        if let Some(deadline) = message_deadline(&incoming.message)
            && let Ok(late) = SystemTime::now().duration_since(deadline)
        {
            return Either::Left(ready(Err(Box::new(Expired {
                id: incoming.message.id().to_owned(),
                late,
            }))));
        }
        Either::Right(self.inner.call(incoming))
    }
}
