//! HTTP/2 reset limits: a client that resets streams faster than the server
//! accepts them (rapid reset), and one whose streams the server must keep
//! resetting, is sent GOAWAY ENHANCE_YOUR_CALM; below the limit its calls
//! are served.

use crate::support::h2_client;
use crate::support::h2_frames::{self, Closed, Frame, RawConn};
use crate::support::{self, PROMPT, assert_serves_new_connection};
use crate::{UNARY, limits};

/// HEADERS + RST_STREAM pairs on streams 1, 3, 5, …
fn reset_pairs(authority: &str, count: u32) -> Vec<Frame> {
    (0..count)
        .flat_map(|i| {
            let stream = 2 * i + 1;
            [
                Frame::headers(
                    stream,
                    h2_frames::grpc_request_block(authority, UNARY),
                    false,
                ),
                Frame::rst_stream(stream, h2_frames::CANCEL),
            ]
        })
        .collect()
}

#[tokio::test]
async fn a_reset_stream_flood_gets_enhance_your_calm() {
    let server =
        support::start_echo_with_limits(limits(|l| l.http2_max_pending_accept_reset_streams = 5))
            .await;
    let addr = server.local_addr();
    let authority = addr.to_string();

    // Under the limit: 3 resets, then a real call on the same connection is answered.
    let mut calm = RawConn::open(addr).await.unwrap();
    let mut frames = reset_pairs(&authority, 3);
    frames.extend(h2_frames::grpc_request(
        &authority,
        UNARY,
        7,
        h2_client::echo_body("ok"),
    ));
    calm.send(&frames).await.unwrap();
    assert_eq!(
        calm.until_response(7, PROMPT, |_| {}).await,
        Ok(()),
        "a call after 3 resets (under the limit of 5) is answered on the same connection"
    );

    // A burst of 10 resets (over the configured 5, under the default 20):
    // the connection is ended with ENHANCE_YOUR_CALM.
    let mut flood = RawConn::open(addr).await.unwrap();
    flood.send(&reset_pairs(&authority, 10)).await.unwrap();
    let closed = flood.until_closed(PROMPT, |_| {}).await;
    assert_eq!(closed, Some(Closed::GoAway(h2_frames::ENHANCE_YOUR_CALM)));
    assert!(
        flood.next_frame().await.is_none(),
        "the connection is closed after GOAWAY"
    );

    assert_serves_new_connection(&server, "after a reset flood on another connection").await;
}

/// A request header block without `:path`: malformed, so the server must
/// reset the stream itself.
fn malformed_request(authority: &str, stream: u32) -> Frame {
    let mut block = Vec::new();
    for (name, value) in [
        (":method", "POST"),
        (":scheme", "http"),
        (":authority", authority),
        ("content-type", "application/grpc"),
    ] {
        h2_frames::hpack_literal(&mut block, name, value);
    }
    Frame::headers(stream, block, true)
}

#[tokio::test]
async fn a_client_whose_streams_the_server_must_keep_resetting_gets_enhance_your_calm() {
    let server =
        support::start_echo_with_limits(limits(|l| l.http2_max_local_error_reset_streams = 5))
            .await;
    let addr = server.local_addr();
    let authority = addr.to_string();

    // Under the limit: 3 malformed requests are each reset, and a good call
    // on the same connection is answered.
    let mut conn = RawConn::open(addr).await.unwrap();
    let mut frames: Vec<Frame> = [1, 3, 5]
        .into_iter()
        .map(|stream| malformed_request(&authority, stream))
        .collect();
    frames.extend(h2_frames::grpc_request(
        &authority,
        UNARY,
        7,
        h2_client::echo_body("ok"),
    ));
    conn.send(&frames).await.unwrap();
    let mut resets = Vec::new();
    let answered = conn
        .until_response(7, PROMPT, |frame| {
            if frame.kind == h2_frames::RST_STREAM {
                let code = u32::from_be_bytes(frame.payload[..4].try_into().unwrap());
                resets.push((frame.stream, code));
            }
        })
        .await;
    assert_eq!(
        answered,
        Ok(()),
        "a good call after 3 malformed ones (under the limit of 5) is answered"
    );
    assert_eq!(
        resets,
        vec![
            (1, h2_frames::PROTOCOL_ERROR),
            (3, h2_frames::PROTOCOL_ERROR),
            (5, h2_frames::PROTOCOL_ERROR)
        ],
        "each malformed request was reset"
    );

    // Over the limit (10 > 5): the connection is ended with ENHANCE_YOUR_CALM.
    let mut flood = RawConn::open(addr).await.unwrap();
    let frames: Vec<Frame> = (0..10)
        .map(|i| malformed_request(&authority, 2 * i + 1))
        .collect();
    flood.send(&frames).await.unwrap();
    // (The RST_STREAM frames sent before it may be dropped with the connection.)
    let closed = flood.until_closed(PROMPT, |_| {}).await;
    assert_eq!(closed, Some(Closed::GoAway(h2_frames::ENHANCE_YOUR_CALM)));

    assert_serves_new_connection(&server, "after a connection hit the reset limit").await;
}
