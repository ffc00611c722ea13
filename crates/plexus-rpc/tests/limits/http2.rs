//! HTTP/2 limits: concurrent streams, header list size, keepalive, and the
//! settings the server announces (frame size, flow-control windows).

use std::time::{Duration, Instant};

use plexus_rpc::echo::v1::EchoRequest;
use tonic::{Code, Request};

use crate::support::h2_client::{self, H2Client};
use crate::support::h2_frames::{self, Closed, Frame, RawConn};
use crate::support::{self, PROMPT, assert_serves, assert_serves_new_connection};
use crate::{UNARY, limits, open_bidi, released, request, spawn_held, start_counting};

#[tokio::test]
async fn calls_past_max_concurrent_streams_wait_until_a_stream_closes() {
    let server = support::start_echo_with_limits(limits(|l| l.max_concurrent_streams = 2)).await;
    let client = support::client(&server).await;

    // Two streams held open on one connection, each proven live by a round trip.
    let mut open = Vec::new();
    for i in 0..2u8 {
        let first = EchoRequest {
            payload: vec![i].into(),
        };
        open.push(open_bidi(&client, first).await);
    }

    // A third call on the same connection waits...
    let mut third_client = client.clone();
    let third = spawn_held(
        async move {
            third_client
                .unary(EchoRequest {
                    payload: "third".into(),
                })
                .await
        },
        "two streams are open with max_concurrent_streams = 2",
    )
    .await;
    // ...while a call on another connection is served.
    assert_serves_new_connection(
        &server,
        "another connection while one is at its stream limit",
    )
    .await;
    assert!(!third.is_finished(), "the third call must still be waiting");

    // Closing one stream lets the third call through.
    let (tx, mut replies) = open.remove(0);
    drop(tx);
    assert!(
        replies.message().await.unwrap().is_none(),
        "the closed stream ends cleanly"
    );
    drop(replies);
    let reply = released(third, "the third call, once a stream closed")
        .await
        .expect("the third call succeeds");
    assert_eq!(reply.into_inner().payload.as_ref(), b"third");
}

#[tokio::test]
async fn a_request_header_list_over_the_limit_is_refused() {
    // 8 KiB, below the 16 KiB default, so the configured value is what refuses.
    let (echo, server, mut client) =
        start_counting(limits(|l| l.max_header_list_size = 8 * 1024)).await;
    let with_header = |len: usize| {
        let mut req = Request::new(EchoRequest {
            payload: "h".into(),
        });
        req.metadata_mut()
            .insert("x-filler", "a".repeat(len).parse().unwrap());
        req
    };

    client
        .unary(with_header(4 * 1024))
        .await
        .expect("4 KiB of headers is within 8 KiB");
    assert_eq!(echo.calls(), 1);

    // Over the limit (up to 4 times it): the HTTP/2 layer (h2) refuses the
    // stream with HTTP 431 before any gRPC code runs. There is no
    // grpc-status, so gRPC clients map it to UNKNOWN.
    let status = client
        .unary(with_header(12 * 1024))
        .await
        .expect_err("12 KiB is over 8 KiB");
    assert_eq!(status.code(), Code::Unknown, "{status:?}");
    assert!(status.message().contains("431"), "{status:?}");
    assert_eq!(echo.calls(), 1, "the handler must not run");
    assert_serves(&mut client, "after a header list over the limit").await;

    // The connection itself survives a 431: the next call on it is served.
    let body = h2_client::echo_body("ok");
    let mut h2 = H2Client::connect(server.local_addr()).await.unwrap();
    let big = "a".repeat(12 * 1024);
    let refused = h2
        .call(UNARY, &[("x-filler", big.as_str())], body.clone())
        .await
        .unwrap();
    assert_eq!(
        refused.http_status,
        http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    assert!(refused.status.is_none(), "{refused:?}");
    let served = h2.call(UNARY, &[], body).await.unwrap();
    assert_eq!(served.code(), Some(Code::Ok), "{served:?}");

    // Over 4 times the limit, h2 treats it as abuse and closes the whole
    // connection (GOAWAY ENHANCE_YOUR_CALM): the call fails UNAVAILABLE and
    // the channel reconnects for the next one.
    let status = client
        .unary(with_header(40 * 1024))
        .await
        .expect_err("40 KiB is over 4 x 8 KiB");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("header_list_way_too_large"),
        "{status:?}"
    );
    assert_eq!(
        echo.calls(),
        3,
        "the handler ran only for the calls that were served"
    );
    assert_serves(&mut client, "after a header list way over the limit").await;
}

#[tokio::test]
async fn a_client_that_never_answers_keepalive_pings_is_disconnected() {
    let server = support::start_echo_with_limits(limits(|l| {
        l.http2_keepalive_interval = Duration::from_millis(100);
        l.http2_keepalive_timeout = Duration::from_millis(100);
    }))
    .await;
    let addr = server.local_addr();
    let body = h2_client::echo_body("ok");

    // A well-behaved client (h2 answers PINGs on its own) on its own connection.
    let mut good = H2Client::connect(addr).await.unwrap();
    let reply = good.call(UNARY, &[], body.clone()).await.unwrap();
    assert_eq!(reply.code(), Some(Code::Ok), "{reply:?}");

    let started = Instant::now();
    let mut mute = RawConn::open(addr).await.unwrap();
    let mut first_ping = None;
    let closed = mute
        .until_closed(PROMPT, |frame| {
            if frame.kind == h2_frames::PING
                && frame.flags & h2_frames::ACK == 0
                && first_ping.is_none()
            {
                first_ping = Some(started.elapsed());
            }
        })
        .await;
    let closed_after = started.elapsed();
    assert!(
        closed.is_some(),
        "a client that never answers PINGs is still connected after {PROMPT:?}"
    );
    let first_ping = first_ping.expect("the server pings before closing the connection");
    assert!(
        first_ping >= Duration::from_millis(100),
        "pinged after {first_ping:?}, before the interval"
    );
    assert!(
        closed_after > first_ping && closed_after < first_ping + Duration::from_secs(1),
        "closed {closed_after:?} after connecting, first ping at {first_ping:?}"
    );

    // The well-behaved client was idle through several ping rounds and is
    // still connected: its same connection serves another call.
    assert!(
        !good.is_closed(),
        "the connection that answers PINGs was closed"
    );
    let reply = good.call(UNARY, &[], body).await.unwrap();
    assert_eq!(reply.code(), Some(Code::Ok), "{reply:?}");
}

#[tokio::test]
async fn the_server_announces_its_http2_limits_and_enforces_the_frame_size() {
    const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    const INITIAL_WINDOW_SIZE: u16 = 0x4;
    const MAX_FRAME_SIZE: u16 = 0x5;
    const MAX_HEADER_LIST_SIZE: u16 = 0x6;
    // All different from the defaults.
    let server = support::start_echo_with_limits(limits(|l| {
        l.max_concurrent_streams = 7;
        l.http2_initial_stream_window_size = 512 * 1024;
        l.http2_initial_connection_window_size = 3 * 1024 * 1024;
        l.http2_max_frame_size = 32 * 1024;
        l.max_header_list_size = 12 * 1024;
    }))
    .await;
    let addr = server.local_addr();
    let authority = addr.to_string();

    let mut conn = RawConn::open(addr).await.unwrap();
    let (settings, connection_window) = tokio::time::timeout(PROMPT, async {
        let (mut settings, mut window) = (None, None);
        while settings.is_none() || window.is_none() {
            let frame = conn
                .next_frame()
                .await
                .expect("the server closed the connection");
            match frame.kind {
                h2_frames::SETTINGS if frame.flags & h2_frames::ACK == 0 => {
                    settings = Some(frame.settings_pairs());
                }
                h2_frames::WINDOW_UPDATE if frame.stream == 0 => {
                    window = Some(u32::from_be_bytes(frame.payload[..4].try_into().unwrap()));
                }
                _ => {}
            }
        }
        (settings.unwrap(), window.unwrap())
    })
    .await
    .expect("the server sends SETTINGS and a connection WINDOW_UPDATE");
    for expected in [
        (MAX_CONCURRENT_STREAMS, 7),
        (INITIAL_WINDOW_SIZE, 512 * 1024),
        (MAX_FRAME_SIZE, 32 * 1024),
        (MAX_HEADER_LIST_SIZE, 12 * 1024),
    ] {
        assert!(
            settings.contains(&expected),
            "{expected:?} not in {settings:?}"
        );
    }
    assert_eq!(
        connection_window,
        3 * 1024 * 1024 - 65_535,
        "the connection window grows to 3 MiB"
    );

    // The frame size applies once the client acknowledged the settings: a
    // 20 KiB DATA frame (over the 16 KiB default) is accepted...
    conn.send(&[Frame::settings_ack()]).await.unwrap();
    let message = h2_client::grpc_body(&request(20 * 1024));
    assert!(message.len() > 16 * 1024 && message.len() < 32 * 1024);
    conn.send(&h2_frames::grpc_request(&authority, UNARY, 1, message))
        .await
        .unwrap();
    assert_eq!(
        conn.until_response(1, PROMPT, |_| {}).await,
        Ok(()),
        "the call with a 20 KiB frame (within 32 KiB) is answered"
    );

    // ...and a 40 KiB one is a connection error.
    conn.send(&h2_frames::grpc_request(
        &authority,
        UNARY,
        3,
        vec![0; 40 * 1024],
    ))
    .await
    .unwrap();
    let closed = conn.until_closed(PROMPT, |_| {}).await;
    assert_eq!(closed, Some(Closed::GoAway(h2_frames::FRAME_SIZE_ERROR)));

    assert_serves_new_connection(&server, "after a connection sent an oversized frame").await;
}
