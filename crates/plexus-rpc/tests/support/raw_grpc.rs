//! A gRPC caller on the bare `h2` crate: sends exactly the headers and bytes
//! a test gives it, with no client-side deadline enforcement of its own.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, Request};
use prost::Message;

/// The outcome of a raw call.
#[derive(Debug)]
pub struct RawOutcome {
    /// `grpc-status` (from the trailers, or the headers of a trailers-only response).
    pub code: i32,
    /// `grpc-message`, percent-decoded.
    pub message: String,
    /// The response body bytes.
    pub body: Bytes,
}

/// Frames `message` as one gRPC length-prefixed message.
pub fn frame(message: &impl Message) -> Bytes {
    let encoded = message.encode_to_vec();
    let mut out = Vec::with_capacity(encoded.len() + 5);
    out.push(0);
    out.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
    out.extend_from_slice(&encoded);
    out.into()
}

/// Sends one request with `extra` headers and `body`, and reads the whole answer.
pub async fn call(addr: SocketAddr, path: &str, extra: &[(&str, &str)], body: Bytes) -> RawOutcome {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (client, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    tokio::spawn(connection);
    let mut client = client.ready().await.expect("h2 ready");
    let mut request = Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    let (response, mut send) = client
        .send_request(request.body(()).unwrap(), false)
        .expect("send request");
    send.send_data(body, true).expect("send body");
    let response = response.await.expect("response");
    let (parts, mut recv) = response.into_parts();
    let mut body = Vec::new();
    while let Some(chunk) = recv.data().await {
        let chunk = chunk.expect("body chunk");
        let _ = recv.flow_control().release_capacity(chunk.len());
        body.extend_from_slice(&chunk);
    }
    let trailers = recv.trailers().await.expect("trailers").unwrap_or_default();
    let (code, message) = status_of(&trailers)
        .or_else(|| status_of(&parts.headers))
        .expect("a grpc-status");
    RawOutcome {
        code,
        message,
        body: body.into(),
    }
}

fn status_of(headers: &HeaderMap) -> Option<(i32, String)> {
    let code = headers.get("grpc-status")?.to_str().ok()?.parse().ok()?;
    let message = headers
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .map(|m| {
            percent_encoding::percent_decode_str(m)
                .decode_utf8_lossy()
                .into_owned()
        })
        .unwrap_or_default();
    Some((code, message))
}
