//! Connection limits: the number of open connections, the TLS handshake
//! timeout, and the grace period given to open calls at shutdown.

use std::time::{Duration, Instant};

use plexus_rpc::Server;
use plexus_rpc::client::ClientBuilder;
use plexus_rpc::echo::EchoService;
use plexus_rpc::echo::v1::EchoRequest;
use plexus_rpc::echo::v1::echo_client::EchoClient;
use plexus_rpc::tls::{ClientTls, ServerTls};
use tokio::io::AsyncReadExt;

use crate::support::{self, PROMPT, assert_serves};
use crate::{limits, open_bidi, released, request, spawn_held};

#[tokio::test]
async fn connections_past_max_connections_wait_until_one_closes() {
    let server = support::start_echo_with_limits(limits(|l| l.max_connections = 2)).await;
    let mut first = support::client(&server).await;
    assert_serves(&mut first, "first connection").await;
    let mut second = support::client(&server).await;
    assert_serves(&mut second, "second connection").await;

    let url = server.url();
    let third = spawn_held(
        async move {
            let channel = ClientBuilder::new(url).connect().await?;
            let reply = EchoClient::new(channel)
                .unary(EchoRequest {
                    payload: "third".into(),
                })
                .await?;
            anyhow::Ok(reply.into_inner())
        },
        "two connections are open with max_connections = 2",
    )
    .await;
    // The connections already open keep being served.
    assert_serves(&mut second, "an open connection while the third waits").await;
    assert!(
        !third.is_finished(),
        "the third connection must still be waiting"
    );

    drop(first);
    let reply = released(third, "the third connection, once one closed")
        .await
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
async fn shutdown_waits_for_open_calls_at_most_the_grace_period() {
    let grace = Duration::from_millis(300);
    let server = support::start_echo_with_limits(limits(|l| l.shutdown_grace = grace)).await;
    let addr = server.local_addr();
    let client = support::client(&server).await;
    let (tx, mut replies) = open_bidi(&client, request(1)).await;

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
