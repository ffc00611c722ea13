//! [`DeadlineLayer`]: a message whose deadline has passed is not handled,
//! and what its handler publishes inherits what is left of the deadline.
//!
//! A message carries a deadline as the remaining budget when it was
//! published, in the [`TIMEOUT_HEADER`] header (whole milliseconds),
//! counted from its CloudEvents `time`: it expires at `time + budget`.

use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use futures::future::{BoxFuture, Either, Ready, ready};
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
/// the handler; gives the handler's outputs the message's deadline (as
/// the budget left at each output's `time`), unless an output has a
/// sooner one of its own.
#[derive(Debug, Clone)]
pub struct Deadline<S> {
    inner: S,
}

type Outputs = Result<Vec<Outgoing>, BoxError>;

impl<S> tower::Service<Incoming> for Deadline<S>
where
    S: tower::Service<Incoming, Response = Vec<Outgoing>, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = Vec<Outgoing>;
    type Error = BoxError;
    type Future = Either<Ready<Outputs>, Either<S::Future, BoxFuture<'static, Outputs>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, incoming: Incoming) -> Self::Future {
        let Some(deadline) = message_deadline(&incoming.message) else {
            return Either::Right(Either::Left(self.inner.call(incoming)));
        };
        if let Ok(late) = SystemTime::now().duration_since(deadline) {
            return Either::Left(ready(Err(Box::new(Expired {
                id: incoming.message.id().to_owned(),
                late,
            }))));
        }
        let call = self.inner.call(incoming);
        Either::Right(Either::Right(Box::pin(async move {
            let outputs = call.await?;
            outputs
                .into_iter()
                .map(|output| inherit(output, deadline))
                .collect()
        })))
    }
}

/// `output` with `deadline` in its [`TIMEOUT_HEADER`], unless it has a
/// sooner deadline already. The budget counts from the output's `time`
/// and is rounded down to whole milliseconds, so it never reaches past
/// `deadline`.
fn inherit(output: Outgoing, deadline: SystemTime) -> Result<Outgoing, BoxError> {
    if message_deadline(&output.message).is_some_and(|own| own <= deadline) {
        return Ok(output);
    }
    let Outgoing { topic, message } = output;
    let budget = deadline
        .duration_since(message.time())
        .unwrap_or(Duration::ZERO);
    let mut parts = message.into_parts();
    parts
        .headers
        .insert(TIMEOUT_HEADER.to_owned(), budget.as_millis().to_string());
    Ok(Outgoing {
        topic,
        message: Message::from_parts(parts)?,
    })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use plexus_core::Message;
    use plexus_core::deadline::TIMEOUT_HEADER;

    use super::{Outgoing, inherit, message_deadline};

    fn output(time: SystemTime, timeout_ms: Option<u64>) -> Outgoing {
        let mut builder = Message::builder("test.Out", "/deadline").time(time);
        if let Some(ms) = timeout_ms {
            builder = builder.header(TIMEOUT_HEADER, ms.to_string());
        }
        Outgoing::new("out", builder.build().unwrap())
    }

    #[test]
    fn an_output_inherits_the_budget_left_at_its_time() {
        let now = SystemTime::now();
        let deadline = now + Duration::from_millis(1500);
        let stamped = inherit(output(now + Duration::from_millis(400), None), deadline).unwrap();
        assert_eq!(stamped.message.header(TIMEOUT_HEADER), Some("1100"));
        assert_eq!(message_deadline(&stamped.message), Some(deadline));
    }

    #[test]
    fn a_sooner_own_deadline_is_kept_and_a_later_one_is_cut() {
        let now = SystemTime::now();
        let deadline = now + Duration::from_secs(2);
        let sooner = inherit(output(now, Some(500)), deadline).unwrap();
        assert_eq!(sooner.message.header(TIMEOUT_HEADER), Some("500"));
        let later = inherit(output(now, Some(10_000)), deadline).unwrap();
        assert_eq!(later.message.header(TIMEOUT_HEADER), Some("2000"));
        let after = inherit(output(deadline + Duration::from_secs(1), None), deadline).unwrap();
        assert_eq!(
            after.message.header(TIMEOUT_HEADER),
            Some("0"),
            "expired on arrival"
        );
    }
}
