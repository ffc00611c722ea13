//! Server-streaming responses over HTTP: Server-Sent Events (the default)
//! or newline-delimited JSON (`Accept: application/x-ndjson`).
//!
//! - SSE (`text/event-stream`): one `data: <json>` event per message; if
//!   the stream fails, a last `event: error` whose data is the error body
//!   `{"code", "message", "details"}`.
//! - NDJSON (`application/x-ndjson`): one JSON message per line; if the
//!   stream fails, a last line `{"error": {"code", "message", "details"}}`.
//!
//! The stream ends with `DEADLINE_EXCEEDED` when the request's deadline
//! passes, and the upstream call is cancelled as soon as the HTTP client
//! goes away (the response body is dropped).

use std::convert::Infallible;
use std::sync::Arc;

use crate::slots::Slot;
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures::stream;
use http::HeaderMap;
use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use plexus_core::Deadline;
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
use tokio_util::sync::CancellationToken;
use tonic::{Status, Streaming};

use crate::http_error::ApiError;
use crate::transcode::message_to_json;

/// How a stream is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// `text/event-stream`.
    Sse,
    /// `application/x-ndjson`.
    Ndjson,
}

impl Format {
    /// NDJSON when the client accepts it, else SSE.
    pub(crate) fn negotiate(headers: &HeaderMap) -> Format {
        let wants_ndjson = headers
            .get_all(ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|v| {
                let media = v.split(';').next().unwrap_or_default().trim();
                media.eq_ignore_ascii_case("application/x-ndjson")
                    || media.eq_ignore_ascii_case("application/jsonl")
            });
        if wants_ndjson {
            Format::Ndjson
        } else {
            Format::Sse
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Sse => "text/event-stream",
            Format::Ndjson => "application/x-ndjson",
        }
    }

    fn message(self, json: &[u8]) -> Bytes {
        let mut out = Vec::with_capacity(json.len() + 8);
        match self {
            Format::Sse => {
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(json);
                out.extend_from_slice(b"\n\n");
            }
            Format::Ndjson => {
                out.extend_from_slice(json);
                out.push(b'\n');
            }
        }
        Bytes::from(out)
    }

    fn error(self, error: &ApiError) -> Bytes {
        let body = error.body();
        let text = match self {
            Format::Sse => format!("event: error\ndata: {body}\n\n"),
            Format::Ndjson => format!("{}\n", serde_json::json!({ "error": body })),
        };
        Bytes::from(text)
    }
}

/// What a streaming response needs besides the upstream stream.
pub(crate) struct StreamSetup {
    pub(crate) format: Format,
    pub(crate) deadline: Deadline,
    pub(crate) options: SerializeOptions,
    pub(crate) pool: DescriptorPool,
    /// Fires when the gateway shuts down.
    pub(crate) closing: CancellationToken,
    /// Held while the stream is open: one of the gateway's stream slots.
    pub(crate) _permit: Slot,
}

struct State {
    upstream: Option<Streaming<DynamicMessage>>,
    setup: Arc<StreamSetup>,
}

/// The HTTP response relaying `upstream`.
pub(crate) fn respond(upstream: Streaming<DynamicMessage>, setup: StreamSetup) -> Response {
    let format = setup.format;
    let state = State {
        upstream: Some(upstream),
        setup: Arc::new(setup),
    };
    let events = stream::unfold(state, |mut state| async move {
        let upstream = state.upstream.as_mut()?;
        let setup = Arc::clone(&state.setup);
        let next = tokio::select! {
            next = tokio::time::timeout_at(setup.deadline.instant(), upstream.message()) => next,
            () = setup.closing.cancelled() => {
                state.upstream = None;
                let status = Status::unavailable("the gateway is shutting down; reconnect");
                let chunk = setup.format.error(&crate::upstream::from_status(&status, &setup.pool));
                return Some((Ok(chunk), state));
            }
        };
        let chunk = match next {
            Ok(Ok(Some(message))) => match message_to_json(&message, None, &setup.options) {
                Ok(json) => setup.format.message(&json),
                Err(e) => {
                    state.upstream = None;
                    setup.format.error(&e)
                }
            },
            Ok(Ok(None)) => return None,
            Ok(Err(status)) => {
                state.upstream = None;
                setup
                    .format
                    .error(&crate::upstream::from_status(&status, &setup.pool))
            }
            Err(_elapsed) => {
                state.upstream = None;
                let status = Status::deadline_exceeded("the stream's deadline passed");
                setup
                    .format
                    .error(&crate::upstream::from_status(&status, &setup.pool))
            }
        };
        Some((Ok::<_, Infallible>(chunk), state))
    });
    let mut response = Response::new(Body::from_stream(events));
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
