//! Request bodies a retry can send again: the request is read into memory
//! (up to a bound) before the first attempt, and every attempt sends a copy.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};

/// A request body type the retry layer can rebuild: from the bytes it read
/// ([`Replay`]), or, when a body turned out larger than the replay bound,
/// from the part already read followed by the rest ([`Chain`]).
///
/// Implemented for [`tonic::body::Body`] (gRPC clients) and
/// [`axum::body::Body`]; implement it for another client's body type with
/// that type's own "box any body" constructor.
pub trait ReplayBody: Body<Data = Bytes> + Unpin + Send + Sized + 'static {
    /// A body sending `replay`.
    fn replay(replay: Replay) -> Self;

    /// A body sending `chain`: the bytes read so far, then the rest.
    fn chain(chain: Chain<Self>) -> Self;
}

impl ReplayBody for tonic::body::Body {
    fn replay(replay: Replay) -> Self {
        tonic::body::Body::new(replay)
    }

    fn chain(chain: Chain<Self>) -> Self {
        tonic::body::Body::new(chain)
    }
}

impl ReplayBody for axum::body::Body {
    fn replay(replay: Replay) -> Self {
        axum::body::Body::new(replay)
    }

    fn chain(chain: Chain<Self>) -> Self {
        axum::body::Body::new(chain)
    }
}

/// A request body read whole into memory: its data chunks and trailers.
#[derive(Debug, Clone, Default)]
pub struct Replay {
    chunks: VecDeque<Bytes>,
    trailers: Option<HeaderMap>,
}

impl Replay {
    /// The number of data bytes.
    pub fn len(&self) -> usize {
        self.chunks.iter().map(Bytes::len).sum()
    }

    /// Whether there is no data.
    pub fn is_empty(&self) -> bool {
        self.chunks.iter().all(Bytes::is_empty)
    }
}

impl Body for Replay {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(chunk) = self.chunks.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len() as u64)
    }
}

/// A body too large to replay: the chunks already read, then the rest of
/// the original body.
#[derive(Debug)]
pub struct Chain<B> {
    read: VecDeque<Bytes>,
    rest: B,
}

impl<B: Body<Data = Bytes> + Unpin> Body for Chain<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        if let Some(chunk) = self.read.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.read.is_empty() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let read: u64 = self.read.iter().map(|c| c.len() as u64).sum();
        let rest = self.rest.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower().saturating_add(read));
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper.saturating_add(read));
        }
        hint
    }
}

/// What reading a request body up to a bound gave.
pub(crate) enum Buffered<B> {
    /// The whole body, to send as often as needed.
    Whole(Replay),
    /// The body is larger than the bound: send it once.
    TooLarge(Chain<B>),
}

/// Reads `body` until it ends or holds more than `limit` bytes.
pub(crate) async fn buffer<B>(mut body: B, limit: usize) -> Result<Buffered<B>, B::Error>
where
    B: Body<Data = Bytes> + Unpin,
{
    let mut replay = Replay::default();
    let mut size = 0usize;
    loop {
        if body.is_end_stream() {
            return Ok(Buffered::Whole(replay));
        }
        let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await else {
            return Ok(Buffered::Whole(replay));
        };
        let frame = match frame?.into_data() {
            Ok(data) => {
                size = size.saturating_add(data.len());
                replay.chunks.push_back(data);
                if size > limit {
                    return Ok(Buffered::TooLarge(Chain {
                        read: replay.chunks,
                        rest: body,
                    }));
                }
                continue;
            }
            Err(frame) => frame,
        };
        if let Ok(trailers) = frame.into_trailers() {
            match &mut replay.trailers {
                Some(existing) => existing.extend(trailers),
                None => replay.trailers = Some(trailers),
            }
        }
    }
}
