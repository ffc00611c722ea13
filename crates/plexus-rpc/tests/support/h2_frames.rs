//! Hand-written HTTP/2 frames on a plain TCP stream, for clients that must
//! misbehave below what the `h2` crate lets a client do: never answer PINGs,
//! flood the server with resets, send malformed or oversized frames.
//! [`Frame`] is one frame (9-byte header); header blocks are HPACK literals
//! without Huffman coding; [`RawConn`] sends and reads them.
//!
//! Well-formed gRPC calls with odd headers or bodies go through
//! [`super::h2_client::H2Client`] instead.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The client connection preface.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Frame types (RFC 9113 §6).
pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;

/// Flags.
pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;

/// Error codes (RFC 9113 §7).
pub const PROTOCOL_ERROR: u32 = 0x1;
pub const FRAME_SIZE_ERROR: u32 = 0x6;
pub const CANCEL: u32 = 0x8;
pub const ENHANCE_YOUR_CALM: u32 = 0xb;

/// Largest payload a frame header can declare (24-bit length).
const MAX_PAYLOAD: usize = (1 << 24) - 1;

/// One HTTP/2 frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn new(kind: u8, flags: u8, stream: u32, payload: Vec<u8>) -> Frame {
        assert!(
            payload.len() <= MAX_PAYLOAD,
            "frame payload of {} bytes",
            payload.len()
        );
        Frame {
            kind,
            flags,
            stream,
            payload,
        }
    }

    /// SETTINGS with these (identifier, value) pairs.
    pub fn settings(pairs: &[(u16, u32)]) -> Frame {
        let mut payload = Vec::with_capacity(pairs.len() * 6);
        for (id, value) in pairs {
            payload.extend_from_slice(&id.to_be_bytes());
            payload.extend_from_slice(&value.to_be_bytes());
        }
        Frame::new(SETTINGS, 0, 0, payload)
    }

    pub fn settings_ack() -> Frame {
        Frame::new(SETTINGS, ACK, 0, Vec::new())
    }

    /// HEADERS carrying a whole header block (END_HEADERS set).
    pub fn headers(stream: u32, block: Vec<u8>, end_stream: bool) -> Frame {
        let flags = END_HEADERS | if end_stream { END_STREAM } else { 0 };
        Frame::new(HEADERS, flags, stream, block)
    }

    pub fn data(stream: u32, data: Vec<u8>, end_stream: bool) -> Frame {
        Frame::new(DATA, if end_stream { END_STREAM } else { 0 }, stream, data)
    }

    pub fn rst_stream(stream: u32, code: u32) -> Frame {
        Frame::new(RST_STREAM, 0, stream, code.to_be_bytes().to_vec())
    }

    /// The frame on the wire: 24-bit length, type, flags, 31-bit stream id, payload.
    pub fn encode(&self) -> Vec<u8> {
        let len = u32::try_from(self.payload.len()).expect("payload length checked in new");
        let mut out = Vec::with_capacity(9 + self.payload.len());
        out.extend_from_slice(&len.to_be_bytes()[1..]);
        out.push(self.kind);
        out.push(self.flags);
        out.extend_from_slice(&(self.stream & 0x7fff_ffff).to_be_bytes());
        out.extend_from_slice(&self.payload);
        out
    }

    /// The (identifier, value) pairs of a SETTINGS frame.
    pub fn settings_pairs(&self) -> Vec<(u16, u32)> {
        assert_eq!(self.kind, SETTINGS, "not a SETTINGS frame: {self:?}");
        self.payload
            .chunks_exact(6)
            .map(|p| {
                (
                    u16::from_be_bytes([p[0], p[1]]),
                    u32::from_be_bytes([p[2], p[3], p[4], p[5]]),
                )
            })
            .collect()
    }

    /// The error code of a GOAWAY frame.
    pub fn goaway_code(&self) -> Option<u32> {
        (self.kind == GOAWAY && self.payload.len() >= 8)
            .then(|| u32::from_be_bytes(self.payload[4..8].try_into().expect("4 bytes")))
    }
}

/// Appends an HPACK integer with an `n`-bit prefix whose high bits are `high`.
fn hpack_int(out: &mut Vec<u8>, high: u8, prefix_bits: u32, mut value: usize) {
    let max = (1usize << prefix_bits) - 1;
    if value < max {
        out.push(high | value as u8);
        return;
    }
    out.push(high | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

/// Appends a "literal header field without indexing, new name" with plain
/// (non-Huffman) strings (RFC 7541 §6.2.2).
pub fn hpack_literal(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(0x00);
    hpack_int(out, 0x00, 7, name.len());
    out.extend_from_slice(name.as_bytes());
    hpack_int(out, 0x00, 7, value.len());
    out.extend_from_slice(value.as_bytes());
}

/// The header block of a gRPC request to `path`.
pub fn grpc_request_block(authority: &str, path: &str) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", authority),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ] {
        hpack_literal(&mut block, name, value);
    }
    block
}

/// A whole gRPC request on `stream`: HEADERS for `path`, then `body` in one
/// DATA frame that ends the stream.
pub fn grpc_request(authority: &str, path: &str, stream: u32, body: Vec<u8>) -> [Frame; 2] {
    [
        Frame::headers(stream, grpc_request_block(authority, path), false),
        Frame::data(stream, body, true),
    ]
}

/// How a raw connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// The server sent GOAWAY with this error code (and may then close).
    GoAway(u32),
    /// The server closed the TCP connection (EOF or reset) without GOAWAY.
    Eof,
}

/// A TCP connection that speaks HTTP/2 frame by frame.
pub struct RawConn {
    tcp: TcpStream,
    read_buf: BytesMut,
}

impl RawConn {
    /// Connects and sends the preface and an empty SETTINGS frame.
    pub async fn open(addr: SocketAddr) -> std::io::Result<RawConn> {
        let mut conn = RawConn {
            tcp: TcpStream::connect(addr).await?,
            read_buf: BytesMut::new(),
        };
        let mut hello = PREFACE.to_vec();
        hello.extend(Frame::settings(&[]).encode());
        conn.tcp.write_all(&hello).await?;
        Ok(conn)
    }

    /// Writes these frames in one write (one burst on the wire).
    pub async fn send(&mut self, frames: &[Frame]) -> std::io::Result<()> {
        let bytes: Vec<u8> = frames.iter().flat_map(Frame::encode).collect();
        self.tcp.write_all(&bytes).await
    }

    /// The next frame, or `None` once the server closed the connection (EOF
    /// or reset).
    pub async fn next_frame(&mut self) -> Option<Frame> {
        loop {
            if self.read_buf.len() >= 9 {
                let len =
                    u32::from_be_bytes([0, self.read_buf[0], self.read_buf[1], self.read_buf[2]])
                        as usize;
                if self.read_buf.len() >= 9 + len {
                    let head = self.read_buf.split_to(9);
                    let payload = self.read_buf.split_to(len).to_vec();
                    let stream =
                        u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
                    return Some(Frame::new(head[3], head[4], stream, payload));
                }
            }
            match self.tcp.read_buf(&mut self.read_buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Reads frames until the server answers on `stream` (its response
    /// HEADERS), with the connection still up; `on_frame` sees every frame.
    /// The error says what happened instead: a GOAWAY, the connection
    /// closing, or nothing within `bound`.
    pub async fn until_response(
        &mut self,
        stream: u32,
        bound: Duration,
        mut on_frame: impl FnMut(&Frame),
    ) -> Result<(), String> {
        let answered = tokio::time::timeout(bound, async {
            while let Some(frame) = self.next_frame().await {
                on_frame(&frame);
                if let Some(code) = frame.goaway_code() {
                    return Err(format!("GOAWAY with error code {code:#x}"));
                }
                if frame.kind == HEADERS && frame.stream == stream {
                    return Ok(());
                }
            }
            Err("the connection closed".to_owned())
        })
        .await;
        answered.unwrap_or_else(|_| Err(format!("no answer on stream {stream} within {bound:?}")))
    }

    /// Reads frames until the server ends the connection, acknowledging its
    /// SETTINGS but never answering PINGs; `on_frame` sees every frame.
    /// `None` if the connection is still open after `bound`.
    pub async fn until_closed(
        &mut self,
        bound: Duration,
        mut on_frame: impl FnMut(&Frame),
    ) -> Option<Closed> {
        tokio::time::timeout(bound, async {
            loop {
                let Some(frame) = self.next_frame().await else {
                    return Closed::Eof;
                };
                on_frame(&frame);
                if let Some(code) = frame.goaway_code() {
                    return Closed::GoAway(code);
                }
                if frame.kind == SETTINGS && frame.flags & ACK == 0 {
                    // A failed write means the server is gone; the next read says so.
                    let _ = self.send(&[Frame::settings_ack()]).await;
                }
            }
        })
        .await
        .ok()
    }
}
