//! gRPC calls over the bare `h2` crate: exactly the headers and body bytes a
//! test gives, for requests tonic's client will not send (truncated frames,
//! malformed protobuf, expired deadlines, unknown paths, huge headers), and
//! with no client-side deadline of its own, so what the server enforces is
//! what the test sees.

use std::net::SocketAddr;

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, Request, StatusCode};
use plexus_rpc::echo::v1::EchoRequest;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tonic::{Code, Status};

/// A gRPC message: uncompressed flag, 4-byte big-endian length, `payload`
/// (any bytes, valid protobuf or not).
pub fn grpc_message(payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("test messages are under 4 GiB");
    let mut out = Vec::with_capacity(payload.len() + 5);
    out.push(0);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// `message`, encoded, as one gRPC message.
pub fn grpc_body(message: &impl prost::Message) -> Vec<u8> {
    grpc_message(&message.encode_to_vec())
}

/// An `EchoRequest` carrying `payload`, as one gRPC message.
pub fn echo_body(payload: &str) -> Vec<u8> {
    grpc_body(&EchoRequest {
        payload: payload.to_owned().into(),
    })
}

/// What a gRPC call over [`H2Client`] got back.
#[derive(Debug)]
pub struct GrpcReply {
    /// The HTTP status of the response.
    pub http_status: StatusCode,
    /// `grpc-status`/`grpc-message` from the trailers, or from the headers of
    /// a trailers-only response; `None` if neither had one.
    pub status: Option<Status>,
    /// The response body (gRPC messages, prefixes included).
    pub body: Bytes,
}

impl GrpcReply {
    /// The gRPC status code, if the answer had one.
    pub fn code(&self) -> Option<Code> {
        self.status.as_ref().map(Status::code)
    }

    /// The gRPC status message, percent-decoded (empty if none).
    pub fn message(&self) -> &str {
        self.status.as_ref().map_or("", Status::message)
    }
}

/// One HTTP/2 connection made with the `h2` crate, driven on a task that
/// ends when the client is dropped.
pub struct H2Client {
    send: h2::client::SendRequest<Bytes>,
    conn: JoinHandle<()>,
    authority: String,
}

impl H2Client {
    /// Connects to `addr` over plaintext HTTP/2.
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<H2Client> {
        let tcp = TcpStream::connect(addr).await?;
        let (send, connection) = h2::client::handshake(tcp).await?;
        let conn = tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(H2Client {
            send,
            conn,
            authority: addr.to_string(),
        })
    }

    /// One call on a new connection (closed when the call is over).
    pub async fn call_once(
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> anyhow::Result<GrpcReply> {
        H2Client::connect(addr)
            .await?
            .call(path, headers, body)
            .await
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.conn.is_finished()
    }

    /// A gRPC POST to `path` with extra `headers` and exactly `body` as the
    /// request body (sent with END_STREAM); reads the whole answer.
    pub async fn call(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> anyhow::Result<GrpcReply> {
        let mut request = Request::post(format!("http://{}{path}", self.authority))
            .header("content-type", "application/grpc")
            .header("te", "trailers");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(())?;
        let mut send = self.send.clone().ready().await?;
        let (response, mut stream) = send.send_request(request, false)?;
        stream.send_data(Bytes::from(body), true)?;
        let response = response.await?;
        let http_status = response.status();
        let mut status = status_of(response.headers());
        let mut recv = response.into_body();
        let mut body = BytesMut::new();
        // A response whose headers ended the stream (trailers-only, or an
        // HTTP error such as 431) has nothing more to read.
        if !recv.is_end_stream() {
            while let Some(chunk) = recv.data().await {
                let chunk = chunk?;
                recv.flow_control().release_capacity(chunk.len())?;
                body.put(chunk);
            }
            if status.is_none()
                && let Some(trailers) = recv.trailers().await?
            {
                status = status_of(&trailers);
            }
        }
        Ok(GrpcReply {
            http_status,
            status,
            body: body.freeze(),
        })
    }
}

impl Drop for H2Client {
    fn drop(&mut self) {
        self.conn.abort();
    }
}

fn status_of(headers: &HeaderMap) -> Option<Status> {
    Status::from_header_map(headers)
}
