//! [`DeadLetterLayer`]: a message that keeps failing, or that expired, is
//! moved to a dead-letter topic with what went wrong, so that the rest of
//! the topic keeps flowing.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use plexus_core::Message;
use plexus_core::bus::Publisher;
use tower::BoxError;

use super::{Expired, Incoming, Outgoing};

/// The headers a dead letter carries besides the original message's.
pub mod headers {
    /// The handler's last error (at most 1,024 bytes).
    pub const ERROR: &str = "plexus-dead-letter-error";
    /// The delivery attempt that failed last.
    pub const ATTEMPT: &str = "plexus-dead-letter-attempt";
    /// The topic the message came from.
    pub const TOPIC: &str = "plexus-dead-letter-topic";
    /// Why it was dead-lettered: `max-attempts` or `expired`.
    pub const REASON: &str = "plexus-dead-letter-reason";
}

const MAX_ERROR_BYTES: usize = 1024;

/// Dead-letters a message on its `max_attempts`-th failed delivery, or at
/// once when it [`Expired`]: it is published to `topic` with
/// [`headers`] added, and the call succeeds (so the input is
/// acknowledged). If the dead letter cannot be published, the call fails
/// and the message comes again.
#[derive(Clone)]
pub struct DeadLetterLayer {
    publisher: Arc<dyn Publisher>,
    topic: Arc<str>,
    max_attempts: u32,
}

impl std::fmt::Debug for DeadLetterLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetterLayer")
            .field("topic", &self.topic)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

impl DeadLetterLayer {
    /// Dead letters go to `topic` through `publisher` after
    /// `max_attempts` deliveries (at least 1).
    pub fn new(publisher: Arc<dyn Publisher>, topic: impl Into<String>, max_attempts: u32) -> Self {
        DeadLetterLayer {
            publisher,
            topic: topic.into().into(),
            max_attempts: max_attempts.max(1),
        }
    }
}

impl<S> tower::Layer<S> for DeadLetterLayer {
    type Service = DeadLetter<S>;

    fn layer(&self, inner: S) -> DeadLetter<S> {
        DeadLetter {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`DeadLetterLayer`].
#[derive(Clone, Debug)]
pub struct DeadLetter<S> {
    inner: S,
    layer: DeadLetterLayer,
}

impl<S> tower::Service<Incoming> for DeadLetter<S>
where
    S: tower::Service<Incoming, Response = Vec<Outgoing>, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = Vec<Outgoing>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Vec<Outgoing>, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, incoming: Incoming) -> Self::Future {
        // The original is kept only when a failure could dead-letter it.
        let last_attempt = incoming.attempt >= self.layer.max_attempts;
        let may_expire = super::message_deadline(&incoming.message).is_some();
        let keep = (last_attempt || may_expire).then(|| {
            (
                incoming.message.clone(),
                incoming.topic.clone(),
                incoming.attempt,
            )
        });
        let call = self.inner.call(incoming);
        let layer = self.layer.clone();
        Box::pin(async move {
            let error = match call.await {
                Ok(outputs) => return Ok(outputs),
                Err(error) => error,
            };
            let expired = error.is::<Expired>();
            let Some((message, topic, attempt)) = keep.filter(|_| expired || last_attempt) else {
                return Err(error);
            };
            let reason = if expired { "expired" } else { "max-attempts" };
            let letter = dead_letter(message, &topic, attempt, reason, &error)?;
            tracing::warn!(
                id = letter.id(),
                topic = %topic,
                dead_letter_topic = %layer.topic,
                attempt,
                reason,
                error = %error,
                "message dead-lettered"
            );
            layer
                .publisher
                .publish(&layer.topic, vec![letter])
                .await
                .map_err(|e| -> BoxError {
                    format!(
                        "cannot dead-letter to `{}` ({e}); the handler failed with: {error}",
                        layer.topic
                    )
                    .into()
                })?;
            Ok(Vec::new())
        })
    }
}

fn dead_letter(
    message: Message,
    topic: &str,
    attempt: u32,
    reason: &str,
    error: &BoxError,
) -> Result<Message, BoxError> {
    let mut text = error.to_string();
    if text.len() > MAX_ERROR_BYTES {
        let mut end = MAX_ERROR_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    let mut parts = message.into_parts();
    parts.headers.insert(headers::ERROR.to_owned(), text);
    parts
        .headers
        .insert(headers::ATTEMPT.to_owned(), attempt.to_string());
    parts
        .headers
        .insert(headers::TOPIC.to_owned(), topic.to_owned());
    parts
        .headers
        .insert(headers::REASON.to_owned(), reason.to_owned());
    Ok(Message::from_parts(parts)?)
}
