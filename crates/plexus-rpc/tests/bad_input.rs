//! Bad input on the gRPC port: malformed protobuf, truncated and oversized
//! frames, unknown methods and services, bytes that are not HTTP/2, and
//! expired or invalid deadlines. Each gets the right status (or a closed
//! connection), no handler runs for what cannot be decoded, nothing panics,
//! and the next good call is served.

mod support;

use std::net::SocketAddr;
use std::sync::{Mutex, Once, PoisonError};

use plexus_rpc::echo::v1::EchoRequest;
use plexus_rpc::server::ServerHandle;
use support::counting::Counting;
use support::h2_client::{H2Client, echo_body, grpc_message};
use support::h2_frames::{self, Closed, Frame, RawConn};
use support::{PROMPT, assert_serves_new_connection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::{Code, Request};

const UNARY: &str = "/plexus.echo.v1.Echo/Unary";
const CLIENT_STREAM: &str = "/plexus.echo.v1.Echo/ClientStream";

/// Panics raised anywhere but in this file's own assertions: a panic in a
/// server task would otherwise only close a connection, unnoticed.
static FOREIGN_PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn watch_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let ours = info
                .location()
                .is_some_and(|l| l.file().ends_with("bad_input.rs"));
            if !ours {
                FOREIGN_PANICS
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(info.to_string());
            }
            default(info);
        }));
    });
}

fn foreign_panics() -> Vec<String> {
    FOREIGN_PANICS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// A good unary call on `h2`'s connection must be answered OK.
async fn assert_h2_serves(h2: &mut H2Client, what: &str) {
    let reply = tokio::time::timeout(PROMPT, h2.call(UNARY, &[], echo_body("ok")))
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {PROMPT:?}"))
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(reply.code(), Some(Code::Ok), "{what}: {reply:?}");
    assert!(!h2.is_closed(), "{what}: the connection was closed");
}

async fn start_counting() -> (Counting, ServerHandle, H2Client) {
    watch_panics();
    let echo = Counting::new();
    let server = support::start(echo.clone()).await;
    let h2 = H2Client::connect(server.local_addr()).await.unwrap();
    (echo, server, h2)
}

#[tokio::test]
async fn malformed_protobuf_in_a_well_formed_frame_is_internal_and_no_handler_runs() {
    let (echo, _server, mut h2) = start_counting().await;

    // Field 1 declares 16 bytes and carries 1; then a field with wire type 7,
    // which does not exist.
    for (served, bytes) in [&[0x0a, 0x10, b'a'][..], &[0x0f, 0x01][..]]
        .into_iter()
        .enumerate()
    {
        let reply = h2.call(UNARY, &[], grpc_message(bytes)).await.unwrap();
        assert_eq!(reply.code(), Some(Code::Internal), "{bytes:?}: {reply:?}");
        assert!(
            reply.message().contains("decode"),
            "{bytes:?}: the message names the decoding failure: {reply:?}"
        );
        assert_eq!(
            echo.calls(),
            served,
            "no handler runs for an undecodable request"
        );
        assert_h2_serves(&mut h2, "after malformed protobuf").await;
        assert_eq!(echo.calls(), served + 1);
    }

    // In a client stream, the good message before the malformed one reaches
    // the handler; the malformed one ends the call.
    let mut body = echo_body("first");
    body.extend(grpc_message(&[0x0a, 0x10, b'a']));
    let reply = h2.call(CLIENT_STREAM, &[], body).await.unwrap();
    assert_eq!(reply.code(), Some(Code::Internal), "{reply:?}");
    assert!(reply.message().contains("decode"), "{reply:?}");
    assert_eq!(
        echo.received(),
        1,
        "the message before the malformed one was delivered"
    );
    assert_h2_serves(&mut h2, "after a malformed client-stream message").await;
}

#[tokio::test]
async fn a_truncated_frame_is_internal_and_no_handler_runs() {
    let (echo, _server, mut h2) = start_counting().await;

    // The prefix declares 100 bytes; the stream ends after 10.
    let mut body = vec![0u8];
    body.extend_from_slice(&100u32.to_be_bytes());
    body.extend_from_slice(&[0x0a, 0x08, 1, 2, 3, 4, 5, 6, 7, 8]);
    let reply = h2.call(UNARY, &[], body).await.unwrap();
    assert_eq!(reply.code(), Some(Code::Internal), "{reply:?}");
    assert!(
        reply.message().contains("EOF"),
        "the message says the stream ended mid-message: {reply:?}"
    );
    // A prefix cut short is truncated too.
    let reply = h2.call(UNARY, &[], vec![0, 0, 0]).await.unwrap();
    assert_eq!(reply.code(), Some(Code::Internal), "{reply:?}");
    assert!(reply.message().contains("EOF"), "{reply:?}");
    assert_eq!(echo.calls(), 0, "no handler runs for a truncated request");

    assert_h2_serves(&mut h2, "after truncated frames").await;
}

#[tokio::test]
async fn a_compressed_message_without_an_encoding_is_refused() {
    let (echo, _server, mut h2) = start_counting().await;

    let mut body = echo_body("x");
    body[0] = 1; // compressed flag, but no grpc-encoding header
    let reply = h2.call(UNARY, &[], body).await.unwrap();
    assert_eq!(reply.code(), Some(Code::Internal), "{reply:?}");
    assert!(reply.message().contains("compress"), "{reply:?}");
    assert_eq!(echo.calls(), 0);

    assert_h2_serves(&mut h2, "after a compressed message").await;
}

#[tokio::test]
async fn a_declared_oversized_message_is_refused_from_its_prefix() {
    // The full 5 MiB request through a real client is in tests/limits/message_size.rs;
    // here only the prefix claims 5 MiB, and the refusal does not wait for
    // the bytes.
    let (echo, _server, mut h2) = start_counting().await;

    let mut body = vec![0u8];
    body.extend_from_slice(&(5u32 * 1024 * 1024).to_be_bytes());
    body.extend_from_slice(&[0x0a; 10]);
    let reply = h2.call(UNARY, &[], body).await.unwrap();
    assert_eq!(reply.code(), Some(Code::ResourceExhausted), "{reply:?}");
    assert!(
        reply.message().contains("5242880 bytes") && reply.message().contains("4194304 bytes"),
        "{reply:?}"
    );
    assert_eq!(echo.calls(), 0);

    assert_h2_serves(&mut h2, "after an oversized message").await;
}

#[tokio::test]
async fn unknown_methods_and_services_are_unimplemented() {
    let (echo, _server, mut h2) = start_counting().await;

    for path in [
        "/plexus.echo.v1.Echo/NoSuchMethod",
        "/no.such.v1.Service/Call",
        "/not-a-grpc-path",
    ] {
        let reply = h2.call(path, &[], echo_body("x")).await.unwrap();
        assert_eq!(reply.code(), Some(Code::Unimplemented), "{path}: {reply:?}");
        assert!(
            reply.message().contains(path),
            "{path}: the message names the path: {reply:?}"
        );
        assert_h2_serves(&mut h2, path).await;
    }
    assert_eq!(echo.calls(), 3, "only the good calls ran a handler");
}

/// Writes `bytes` on a new TCP connection and waits for the server to close it.
async fn send_garbage(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    // The server may close before it has read everything: a failed write is fine.
    let _ = tcp.write_all(bytes).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(PROMPT, async {
        let mut buf = [0u8; 4096];
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the connection was still open after {PROMPT:?}"
    );
    answer
}

/// 1 KiB of deterministic pseudo-random bytes (xorshift).
fn noise() -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

#[tokio::test]
async fn bytes_that_are_not_http2_close_the_connection_and_nothing_panics() {
    let (echo, server, mut h2) = start_counting().await;
    let addr = server.local_addr();

    send_garbage(addr, &noise()).await;
    send_garbage(
        addr,
        b"POST /plexus.echo.v1.Echo/Unary HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    )
    .await;

    // A valid preface followed by a malformed frame (SETTINGS whose length
    // is not a multiple of 6) is a connection error: GOAWAY with an error
    // code (h2 says PROTOCOL_ERROR; RFC 9113 suggests FRAME_SIZE_ERROR),
    // then close.
    let mut conn = RawConn::open(addr).await.unwrap();
    conn.send(&[Frame::new(h2_frames::SETTINGS, 0, 0, vec![0; 5])])
        .await
        .unwrap();
    let closed = conn.until_closed(PROMPT, |_| {}).await;
    assert!(
        matches!(
            closed,
            Some(Closed::GoAway(
                h2_frames::PROTOCOL_ERROR | h2_frames::FRAME_SIZE_ERROR
            ))
        ),
        "{closed:?}"
    );
    assert!(conn.next_frame().await.is_none(), "closed after GOAWAY");

    // A connection opened before is still served, and so is a new one.
    assert_h2_serves(&mut h2, "an open connection after garbage on others").await;
    assert_serves_new_connection(&server, "a new connection after garbage").await;
    assert_eq!(echo.calls(), 2);
    assert_eq!(
        foreign_panics(),
        Vec::<String>::new(),
        "panics outside the test"
    );
}

#[tokio::test]
async fn an_expired_deadline_is_deadline_exceeded_and_no_handler_runs() {
    let (echo, server, mut h2) = start_counting().await;

    // A bare tonic client: tonic applies `grpc-timeout` on the client side
    // too, so with `0n` it gives up at once (CANCELLED, "Timeout expired")
    // and the server's answer cannot be observed through it.
    let mut bare = support::bare_client(&server).await;
    let mut request = Request::new(EchoRequest {
        payload: "late".into(),
    });
    request
        .metadata_mut()
        .insert("grpc-timeout", "0n".parse().unwrap());
    let status = bare.unary(request).await.unwrap_err();
    assert!(
        matches!(status.code(), Code::Cancelled | Code::DeadlineExceeded),
        "{status:?}"
    );

    // Sent raw, the call reaches the server, which refuses it unrun.
    for expired in ["0n", "1n", "0S"] {
        let reply = h2
            .call(UNARY, &[("grpc-timeout", expired)], echo_body("late"))
            .await
            .unwrap();
        assert_eq!(
            reply.code(),
            Some(Code::DeadlineExceeded),
            "{expired}: {reply:?}"
        );
        assert!(
            reply.message().contains("already passed") && reply.message().contains(UNARY),
            "{expired}: {reply:?}"
        );
    }
    assert_eq!(echo.calls(), 0, "no handler runs for an expired call");

    assert_h2_serves(&mut h2, "after expired deadlines").await;
    let reply = bare
        .unary(EchoRequest {
            payload: "ok".into(),
        })
        .await
        .expect("the bare client's next call is served");
    assert_eq!(reply.into_inner().payload.as_ref(), b"ok");
}

#[tokio::test]
async fn an_invalid_grpc_timeout_is_invalid_argument_naming_the_header() {
    let (echo, server, _h2) = start_counting().await;
    let mut bare = support::bare_client(&server).await;

    for invalid in ["abc", "5", "123456789S", "10x", "-1S"] {
        let mut request = Request::new(EchoRequest {
            payload: "x".into(),
        });
        request
            .metadata_mut()
            .insert("grpc-timeout", invalid.parse().unwrap());
        let status = bare.unary(request).await.unwrap_err();
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{invalid}: {status:?}"
        );
        assert!(
            status.message().contains("grpc-timeout"),
            "{invalid}: the message names the header: {status:?}"
        );
    }
    assert_eq!(echo.calls(), 0, "no handler runs for an invalid deadline");

    let reply = bare
        .unary(EchoRequest {
            payload: "ok".into(),
        })
        .await
        .expect("the next call is served");
    assert_eq!(reply.into_inner().payload.as_ref(), b"ok");
}
