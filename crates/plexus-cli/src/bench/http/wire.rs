//! Bytes on the wire: a TCP stream wrapper that counts what a client's
//! connections send and receive, and the connector that makes such streams
//! for tonic channels and for hyper's HTTP client.
//!
//! The count is TCP payload: HTTP/1.1 request and status lines, headers and
//! bodies; for gRPC every HTTP/2 frame (HEADERS with HPACK-compressed
//! headers, DATA with the 5-byte gRPC message prefix, trailers, and the
//! connection's SETTINGS, WINDOW_UPDATE and PING frames). TCP/IP headers are
//! not counted: they are the same per packet on every stack.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use futures::future::BoxFuture;
use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Bytes sent and received by a set of connections, counted as they go.
#[derive(Debug, Clone, Default)]
pub struct WireCounter(Arc<Counts>);

#[derive(Debug, Default)]
struct Counts {
    sent: AtomicU64,
    received: AtomicU64,
}

/// Bytes sent and received, at one moment or over a measurement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Wire {
    /// Bytes written by the client (requests).
    pub sent: u64,
    /// Bytes read by the client (responses).
    pub received: u64,
}

impl WireCounter {
    /// The totals so far.
    pub fn snapshot(&self) -> Wire {
        Wire {
            sent: self.0.sent.load(Ordering::Relaxed),
            received: self.0.received.load(Ordering::Relaxed),
        }
    }
}

impl Wire {
    /// What was counted between `earlier` and `self`.
    pub fn since(self, earlier: Wire) -> Wire {
        Wire {
            sent: self.sent - earlier.sent,
            received: self.received - earlier.received,
        }
    }
}

/// A stream that adds what passes through it to a [`WireCounter`].
#[derive(Debug)]
pub struct Counted<T> {
    inner: T,
    counter: WireCounter,
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        let read = (buf.filled().len() - before) as u64;
        self.counter.0.received.fetch_add(read, Ordering::Relaxed);
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = ready!(Pin::new(&mut self.inner).poll_write(cx, buf))?;
        self.counter
            .0
            .sent
            .fetch_add(written as u64, Ordering::Relaxed);
        Poll::Ready(Ok(written))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = ready!(Pin::new(&mut self.inner).poll_write_vectored(cx, bufs))?;
        self.counter
            .0
            .sent
            .fetch_add(written as u64, Ordering::Relaxed);
        Poll::Ready(Ok(written))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl Connection for Counted<TcpStream> {
    fn connected(&self) -> Connected {
        self.inner.connected()
    }
}

/// Opens plain TCP connections (`TCP_NODELAY`, as plexus's gRPC client
/// does) to the host and port of the URI, counted by one [`WireCounter`].
#[derive(Debug, Clone, Default)]
pub struct CountingConnector {
    counter: WireCounter,
}

impl CountingConnector {
    /// A connector whose connections add to `counter`.
    pub fn new(counter: WireCounter) -> Self {
        CountingConnector { counter }
    }
}

impl tower::Service<Uri> for CountingConnector {
    type Response = TokioIo<Counted<TcpStream>>;
    type Error = io::Error;
    type Future = BoxFuture<'static, io::Result<Self::Response>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let counter = self.counter.clone();
        Box::pin(async move {
            let host = uri.host().ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, format!("no host in {uri}"))
            })?;
            let port = uri.port_u16().unwrap_or(80);
            let stream = TcpStream::connect((host, port)).await?;
            stream.set_nodelay(true)?;
            Ok(TokioIo::new(Counted {
                inner: stream,
                counter,
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tower::Service as _;

    use super::*;

    #[tokio::test]
    async fn counts_both_directions() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 5];
            socket.read_exact(&mut request).await.unwrap();
            socket.write_all(b"0123456789").await.unwrap();
        });
        let counter = WireCounter::default();
        let mut connector = CountingConnector::new(counter.clone());
        let uri: Uri = format!("http://{addr}").parse().unwrap();
        let mut stream = connector.call(uri).await.unwrap().into_inner();
        stream.write_all(b"hello").await.unwrap();
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).await.unwrap();
        server.await.unwrap();
        assert_eq!(reply, b"0123456789");
        let wire = counter.snapshot();
        assert_eq!(
            wire,
            Wire {
                sent: 5,
                received: 10
            }
        );
        assert_eq!(
            wire.since(Wire {
                sent: 1,
                received: 4
            }),
            Wire {
                sent: 4,
                received: 6
            }
        );
    }
}
