//! Message size limits: requests (whole, and each message of a client
//! stream) and responses (unary and streamed).

use plexus_rpc::echo::v1::StreamRequest;
use plexus_rpc::server::Limits;
use prost::Message;
use tonic::Code;

use crate::support::assert_serves;
use crate::{limits, open_bidi, request, start_counting};

#[tokio::test]
async fn a_request_over_the_default_4_mib_limit_is_refused_before_the_handler_runs() {
    let (echo, _server, mut client) = start_counting(Limits::default()).await;

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
    let (echo, _server, mut client) =
        start_counting(limits(|l| l.max_decoding_message_size = 1024)).await;

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
    let (echo, _server, mut client) =
        start_counting(limits(|l| l.max_encoding_message_size = 1024)).await;

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
    let (tx, mut replies) = open_bidi(&client, request(10)).await;
    tx.send(request(10)).await.unwrap();
    let reply = replies.message().await.unwrap().expect("a small reply");
    assert_eq!(reply.payload.len(), 10);
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
