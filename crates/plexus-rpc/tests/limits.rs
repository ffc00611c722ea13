//! Every explicit limit of the plexus server (`server::Limits`), enforced
//! against real clients over loopback — and each time, the server keeps
//! serving other calls and connections afterwards.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use plexus_rpc::Server;
use plexus_rpc::client::{Channel, ClientBuilder};
use plexus_rpc::echo::v1::echo_client::EchoClient;
use plexus_rpc::echo::v1::echo_server::Echo;
use plexus_rpc::echo::v1::{EchoReply, EchoRequest, StreamRequest};
use plexus_rpc::echo::{EchoService, ReplyStream};
use plexus_rpc::server::Limits;
use plexus_rpc::tls::{ClientTls, ServerTls};
use prost::Message;
use support::h2raw::{self, Closed, Frame, H2Client, RawConn};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request, Response, Status, Streaming};

/// Bound on anything that should happen promptly.
const PROMPT: Duration = Duration::from_secs(5);
/// How long a call that must be held back is watched: far longer than a
/// normal call takes on loopback.
const HELD: Duration = Duration::from_millis(200);

const UNARY: &str = "/plexus.echo.v1.Echo/Unary";

/// The stock Echo service, counting handler runs and client-stream
/// messages handed to the handler; its `server_stream` sends `count`
/// one-byte replies and then one carrying the request's payload (a large
/// reply right behind small ones).
#[derive(Clone, Default)]
struct Counting {
    calls: Arc<AtomicUsize>,
    received: Arc<AtomicUsize>,
}

impl Counting {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn received(&self) -> usize {
        self.received.load(Ordering::SeqCst)
    }

    fn called(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

#[tonic::async_trait]
impl Echo for Counting {
    async fn unary(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        self.called();
        EchoService.unary(request).await
    }

    type ServerStreamStream = ReplyStream;

    async fn server_stream(
        &self,
        request: Request<StreamRequest>,
    ) -> Result<Response<ReplyStream>, Status> {
        self.called();
        let StreamRequest { payload, count } = request.into_inner();
        let small = (0..u64::from(count)).map(|sequence| {
            Ok(EchoReply {
                payload: vec![1].into(),
                sequence,
            })
        });
        let last = EchoReply {
            payload,
            sequence: u64::from(count),
        };
        let replies = small.chain(std::iter::once(Ok(last)));
        Ok(Response::new(Box::pin(tokio_stream::iter(replies))))
    }

    async fn client_stream(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<EchoReply>, Status> {
        self.called();
        let mut inbound = request.into_inner();
        let mut reply = EchoReply::default();
        while let Some(message) = inbound.message().await? {
            self.received.fetch_add(1, Ordering::SeqCst);
            reply.payload = message.payload;
            reply.sequence += 1;
        }
        Ok(Response::new(reply))
    }

    type BidiStream = ReplyStream;

    async fn bidi(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<ReplyStream>, Status> {
        self.called();
        EchoService.bidi(request).await
    }
}

fn limits(configure: impl FnOnce(&mut Limits)) -> Limits {
    let mut limits = Limits::default();
    configure(&mut limits);
    limits
}

fn request(len: usize) -> EchoRequest {
    EchoRequest {
        payload: vec![7u8; len].into(),
    }
}

/// A small unary call that must succeed, within [`PROMPT`].
async fn assert_serves(client: &mut EchoClient<Channel>, what: &str) {
    let reply = tokio::time::timeout(
        PROMPT,
        client.unary(EchoRequest {
            payload: "ok".into(),
        }),
    )
    .await
    .unwrap_or_else(|_| panic!("{what}: no answer within {PROMPT:?}"))
    .unwrap_or_else(|status| panic!("{what}: {status:?}"));
    assert_eq!(reply.into_inner().payload.as_ref(), b"ok", "{what}");
}

/// A unary call on a new connection must succeed.
async fn assert_serves_new_connection(server: &plexus_rpc::server::ServerHandle, what: &str) {
    let mut client = support::client(server).await;
    assert_serves(&mut client, what).await;
}

#[tokio::test]
async fn a_request_over_the_default_4_mib_limit_is_refused_before_the_handler_runs() {
    let echo = Counting::default();
    let server = support::start(echo.clone()).await;
    let mut client = support::client(&server).await;

    let big = request(5 * 1024 * 1024);
    let len = big.encoded_len();
    let status = client
        .unary(big)
        .await
        .expect_err("a 5 MiB request must be refused");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains(&format!("{len} bytes"))
            && status.message().contains("limit of 4194304 bytes"),
        "the message names both sizes: {status:?}"
    );
    assert_eq!(
        echo.calls(),
        0,
        "the handler must not run for a refused request"
    );

    // The same channel (and connection) goes on serving.
    assert_serves(&mut client, "after a refused 5 MiB request").await;
    assert_eq!(echo.calls(), 1);
}

#[tokio::test]
async fn a_configured_decoding_limit_applies_to_each_message_of_a_client_stream() {
    let echo = Counting::default();
    let builder = Server::builder().limits(limits(|l| l.max_decoding_message_size = 1024));
    let server = support::start_with(builder, echo.clone()).await;
    let mut client = support::client(&server).await;

    // A message of exactly the limit passes; one byte more does not.
    // (1 tag byte + 2 length bytes + payload.)
    assert_eq!(request(1021).encoded_len(), 1024);
    client
        .unary(request(1021))
        .await
        .expect("a message of exactly the limit is accepted");
    let status = client
        .unary(request(1022))
        .await
        .expect_err("one byte over the limit");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("1025 bytes"), "{status:?}");
    assert_eq!(echo.calls(), 1);

    // Two good messages, then an oversized one: the call fails, and the
    // handler received the two messages sent before it.
    let messages = vec![request(100), request(100), request(2000), request(100)];
    let status = client
        .client_stream(tokio_stream::iter(messages))
        .await
        .expect_err("the oversized message must fail the call");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("2003 bytes") && status.message().contains("limit of 1024 bytes"),
        "{status:?}"
    );
    assert_eq!(echo.calls(), 2);
    assert_eq!(
        echo.received(),
        2,
        "the messages before the oversized one reach the handler"
    );

    assert_serves(&mut client, "after an oversized client-stream message").await;
}

#[tokio::test]
async fn a_response_over_the_encoding_limit_ends_the_call_with_resource_exhausted() {
    let echo = Counting::default();
    let builder = Server::builder().limits(limits(|l| l.max_encoding_message_size = 1024));
    let server = support::start_with(builder, echo.clone()).await;
    let mut client = support::client(&server).await;

    let status = client
        .unary(request(2000))
        .await
        .expect_err("a 2 KB reply is over the limit");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("response message is 2003 bytes")
            && status.message().contains("limit of 1024 bytes"),
        "{status:?}"
    );
    assert_eq!(echo.calls(), 1, "the handler ran; its reply was not sent");
    assert_serves(&mut client, "after an oversized unary reply").await;

    // On a stream, the replies before the oversized one arrive, then the
    // stream ends with the status.
    let (tx, rx) = mpsc::channel(4);
    let mut replies = client
        .bidi(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    for _ in 0..2 {
        tx.send(request(10)).await.unwrap();
        let reply = replies.message().await.unwrap().expect("a small reply");
        assert_eq!(reply.payload.len(), 10);
    }
    tx.send(request(2000)).await.unwrap();
    let status = replies
        .message()
        .await
        .expect_err("the oversized reply ends the stream");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    drop(tx);

    // Replies produced together (sent in one chunk) still arrive up to the
    // oversized one.
    let mut replies = client
        .server_stream(StreamRequest {
            payload: vec![7u8; 2000].into(),
            count: 3,
        })
        .await
        .unwrap()
        .into_inner();
    let mut received = Vec::new();
    let status = loop {
        match replies.message().await {
            Ok(Some(reply)) => received.push(reply.sequence),
            Ok(None) => panic!("the stream ended without a status for the oversized reply"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(
        received,
        vec![0, 1, 2],
        "the replies before the oversized one arrive"
    );
    assert_serves(&mut client, "after an oversized stream reply").await;
}

#[tokio::test]
async fn calls_past_max_concurrent_streams_wait_until_a_stream_closes() {
    let server = support::start_echo_with_limits(limits(|l| l.max_concurrent_streams = 2)).await;
    let client = support::client(&server).await;

    // Two streams held open on one connection, each proven live by a round trip.
    let mut open = Vec::new();
    for i in 0..2u8 {
        let (tx, rx) = mpsc::channel(4);
        let mut replies = client
            .clone()
            .bidi(ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        tx.send(EchoRequest {
            payload: vec![i].into(),
        })
        .await
        .unwrap();
        let reply = replies
            .message()
            .await
            .unwrap()
            .expect("a reply on an open stream");
        assert_eq!(reply.payload.as_ref(), &[i]);
        open.push((tx, replies));
    }

    // A third call on the same connection waits...
    let mut third_client = client.clone();
    let mut third = tokio::spawn(async move {
        third_client
            .unary(EchoRequest {
                payload: "third".into(),
            })
            .await
    });
    assert!(
        tokio::time::timeout(HELD, &mut third).await.is_err(),
        "a third call completed while two streams were open with max_concurrent_streams = 2"
    );
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
    let reply = tokio::time::timeout(PROMPT, third)
        .await
        .expect("the third call completes once a stream closes")
        .unwrap()
        .expect("the third call succeeds");
    assert_eq!(reply.into_inner().payload.as_ref(), b"third");
}

#[tokio::test]
async fn a_request_header_list_over_the_limit_is_refused() {
    // 8 KiB, below the 16 KiB default, so the configured value is what refuses.
    let echo = Counting::default();
    let builder = Server::builder().limits(limits(|l| l.max_header_list_size = 8 * 1024));
    let server = support::start_with(builder, echo.clone()).await;
    let mut client = support::client(&server).await;
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
    let body = h2raw::grpc_message(
        &EchoRequest {
            payload: "ok".into(),
        }
        .encode_to_vec(),
    );
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
    assert_eq!(served.status.map(|s| s.code()), Some(Code::Ok));

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
    let body = h2raw::grpc_message(
        &EchoRequest {
            payload: "ok".into(),
        }
        .encode_to_vec(),
    );

    // A well-behaved client (h2 answers PINGs on its own) on its own connection.
    let mut good = H2Client::connect(addr).await.unwrap();
    let reply = good.call(UNARY, &[], body.clone()).await.unwrap();
    assert_eq!(reply.status.map(|s| s.code()), Some(Code::Ok));

    let started = Instant::now();
    let mut mute = RawConn::open(addr).await.unwrap();
    let mut first_ping = None;
    let closed = mute
        .until_closed(PROMPT, |frame| {
            if frame.kind == h2raw::PING && frame.flags & h2raw::ACK == 0 && first_ping.is_none() {
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
    assert_eq!(reply.status.map(|s| s.code()), Some(Code::Ok));
}

/// HEADERS + RST_STREAM pairs on streams 1, 3, 5, …
fn reset_pairs(authority: &str, count: u32) -> Vec<Frame> {
    (0..count)
        .flat_map(|i| {
            let stream = 2 * i + 1;
            [
                Frame::headers(stream, h2raw::grpc_request_block(authority, UNARY), false),
                Frame::rst_stream(stream, h2raw::CANCEL),
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
    let call_stream = 7;
    frames.push(Frame::headers(
        call_stream,
        h2raw::grpc_request_block(&authority, UNARY),
        false,
    ));
    let body = h2raw::grpc_message(
        &EchoRequest {
            payload: "ok".into(),
        }
        .encode_to_vec(),
    );
    frames.push(Frame::data(call_stream, body, true));
    calm.send(&frames).await.unwrap();
    let answered = tokio::time::timeout(PROMPT, async {
        while let Some(frame) = calm.next_frame().await {
            assert_eq!(
                frame.goaway_code(),
                None,
                "3 resets are under the limit of 5"
            );
            if frame.kind == h2raw::HEADERS && frame.stream == call_stream {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        answered,
        Ok(true),
        "a call after 3 resets is answered on the same connection"
    );

    // A burst of 10 resets (over the configured 5, under the default 20):
    // the connection is ended with ENHANCE_YOUR_CALM.
    let mut flood = RawConn::open(addr).await.unwrap();
    flood.send(&reset_pairs(&authority, 10)).await.unwrap();
    let closed = flood.until_closed(PROMPT, |_| {}).await;
    assert_eq!(closed, Some(Closed::GoAway(h2raw::ENHANCE_YOUR_CALM)));
    assert!(
        flood.next_frame().await.is_none(),
        "the connection is closed after GOAWAY"
    );

    assert_serves_new_connection(&server, "after a reset flood on another connection").await;
}

#[tokio::test]
async fn connections_past_max_connections_wait_until_one_closes() {
    let server = support::start_echo_with_limits(limits(|l| l.max_connections = 2)).await;
    let mut first = support::client(&server).await;
    assert_serves(&mut first, "first connection").await;
    let mut second = support::client(&server).await;
    assert_serves(&mut second, "second connection").await;

    let url = server.url();
    let mut third = tokio::spawn(async move {
        let channel = ClientBuilder::new(url).connect().await?;
        let reply = EchoClient::new(channel)
            .unary(EchoRequest {
                payload: "third".into(),
            })
            .await?;
        anyhow::Ok(reply.into_inner())
    });
    assert!(
        tokio::time::timeout(HELD, &mut third).await.is_err(),
        "a third connection was served while two were open with max_connections = 2"
    );
    // The connections already open keep being served.
    assert_serves(&mut second, "an open connection while the third waits").await;
    assert!(
        !third.is_finished(),
        "the third connection must still be waiting"
    );

    drop(first);
    let reply = tokio::time::timeout(PROMPT, third)
        .await
        .expect("the third connection is served once one closes")
        .unwrap()
        .expect("the third call succeeds");
    assert_eq!(reply.payload.as_ref(), b"third");
}

#[tokio::test]
async fn a_client_that_stalls_the_tls_handshake_is_disconnected_after_the_timeout() {
    let ca = support::certs::Ca::new("plexus limits test CA");
    let leaf = ca.server();
    let timeout = Duration::from_millis(200);
    let builder = Server::builder()
        .limits(limits(|l| l.tls_handshake_timeout = timeout))
        .tls(ServerTls::from_pem(&leaf.cert_pem, &leaf.key_pem).unwrap());
    let server = support::start_with(builder, EchoService).await;
    let addr = server.local_addr();

    let started = Instant::now();
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();

    // Meanwhile a real TLS client is served.
    let tls = ClientTls::new().ca_pem(&ca.cert_pem).unwrap();
    let channel = ClientBuilder::new(format!("https://127.0.0.1:{}", addr.port()))
        .tls(tls)
        .connect()
        .await
        .expect("a TLS client connects while another stalls its handshake");
    assert_serves(
        &mut EchoClient::new(channel),
        "a TLS client next to a stalled handshake",
    )
    .await;

    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(PROMPT, silent.read(&mut buf))
        .await
        .expect("the stalled connection is closed within the bound");
    let elapsed = started.elapsed();
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "expected EOF or reset, got {read:?}"
    );
    assert!(
        elapsed >= timeout && elapsed < timeout + Duration::from_secs(1),
        "closed after {elapsed:?}; the handshake timeout is {timeout:?}"
    );
}

#[tokio::test]
async fn the_server_announces_its_http2_limits_and_enforces_the_frame_size() {
    const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    const INITIAL_WINDOW_SIZE: u16 = 0x4;
    const MAX_FRAME_SIZE: u16 = 0x5;
    const MAX_HEADER_LIST_SIZE: u16 = 0x6;
    const FRAME_SIZE_ERROR: u32 = 0x6;
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
                h2raw::SETTINGS if frame.flags & h2raw::ACK == 0 => {
                    settings = Some(frame.settings_pairs());
                }
                h2raw::WINDOW_UPDATE if frame.stream == 0 => {
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
    let message = h2raw::grpc_message(&request(20 * 1024).encode_to_vec());
    assert!(message.len() > 16 * 1024 && message.len() < 32 * 1024);
    conn.send(&[
        Frame::headers(1, h2raw::grpc_request_block(&authority, UNARY), false),
        Frame::data(1, message, true),
    ])
    .await
    .unwrap();
    let answered = tokio::time::timeout(PROMPT, async {
        while let Some(frame) = conn.next_frame().await {
            assert_eq!(frame.goaway_code(), None, "a 20 KiB frame is within 32 KiB");
            if frame.kind == h2raw::HEADERS && frame.stream == 1 {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        answered,
        Ok(true),
        "the call with a 20 KiB frame is answered"
    );

    // ...and a 40 KiB one is a connection error.
    conn.send(&[
        Frame::headers(3, h2raw::grpc_request_block(&authority, UNARY), false),
        Frame::data(3, vec![0; 40 * 1024], true),
    ])
    .await
    .unwrap();
    let closed = conn.until_closed(PROMPT, |_| {}).await;
    assert_eq!(closed, Some(Closed::GoAway(FRAME_SIZE_ERROR)));

    assert_serves_new_connection(&server, "after a connection sent an oversized frame").await;
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
        h2raw::hpack_literal(&mut block, name, value);
    }
    Frame::headers(stream, block, true)
}

#[tokio::test]
async fn a_client_whose_streams_the_server_must_keep_resetting_gets_enhance_your_calm() {
    const PROTOCOL_ERROR: u32 = 0x1;
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
    let body = h2raw::grpc_message(
        &EchoRequest {
            payload: "ok".into(),
        }
        .encode_to_vec(),
    );
    frames.push(Frame::headers(
        7,
        h2raw::grpc_request_block(&authority, UNARY),
        false,
    ));
    frames.push(Frame::data(7, body, true));
    conn.send(&frames).await.unwrap();
    let mut resets = Vec::new();
    let answered = tokio::time::timeout(PROMPT, async {
        while let Some(frame) = conn.next_frame().await {
            assert_eq!(
                frame.goaway_code(),
                None,
                "3 resets are under the limit of 5"
            );
            if frame.kind == h2raw::RST_STREAM {
                let code = u32::from_be_bytes(frame.payload[..4].try_into().unwrap());
                resets.push((frame.stream, code));
            }
            if frame.kind == h2raw::HEADERS && frame.stream == 7 {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        answered,
        Ok(true),
        "a good call after 3 malformed ones is answered"
    );
    assert_eq!(
        resets,
        vec![
            (1, PROTOCOL_ERROR),
            (3, PROTOCOL_ERROR),
            (5, PROTOCOL_ERROR)
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
    assert_eq!(closed, Some(Closed::GoAway(h2raw::ENHANCE_YOUR_CALM)));

    assert_serves_new_connection(&server, "after a connection hit the reset limit").await;
}

#[tokio::test]
async fn shutdown_waits_for_open_calls_at_most_the_grace_period() {
    let grace = Duration::from_millis(300);
    let server = support::start_echo_with_limits(limits(|l| l.shutdown_grace = grace)).await;
    let addr = server.local_addr();
    let client = support::client(&server).await;
    let (tx, rx) = mpsc::channel(4);
    let mut replies = client
        .clone()
        .bidi(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    tx.send(request(1)).await.unwrap();
    assert!(replies.message().await.unwrap().is_some());

    let started = Instant::now();
    let mut shutdown = tokio::spawn(server.shutdown());
    // The server stops accepting at once...
    let refused = tokio::time::timeout(PROMPT, async {
        while tokio::net::TcpStream::connect(addr).await.is_ok() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(
        refused.is_ok(),
        "still accepting connections {PROMPT:?} after shutdown began"
    );
    // ...while the open call goes on being served during the grace period.
    tx.send(request(2)).await.unwrap();
    let reply = replies
        .message()
        .await
        .expect("the open call is served during the grace period");
    assert_eq!(reply.map(|r| r.payload.len()), Some(2));
    assert!(
        tokio::time::timeout(grace / 2, &mut shutdown)
            .await
            .is_err(),
        "shutdown finished while a call was open, before the grace period"
    );

    // When the grace period ends, the call is cut and shutdown returns.
    let cut = tokio::time::timeout(PROMPT, replies.message())
        .await
        .expect("the open call ends when the grace period is over");
    assert!(cut.is_err(), "the cut call ends with an error, got {cut:?}");
    tokio::time::timeout(PROMPT, shutdown)
        .await
        .expect("shutdown returns after the grace period")
        .unwrap()
        .expect("shutdown succeeds");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= grace && elapsed < grace + Duration::from_secs(2),
        "shutdown took {elapsed:?} with a grace period of {grace:?}"
    );
    drop(tx);

    // With no call open, shutdown does not wait for the grace period.
    let server = support::start_echo_with_limits(limits(|l| l.shutdown_grace = PROMPT)).await;
    let mut idle = support::client(&server).await;
    assert_serves(&mut idle, "before shutdown").await;
    let started = Instant::now();
    tokio::time::timeout(PROMPT, server.shutdown())
        .await
        .expect("shutdown with only idle connections is prompt")
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
}
