//! Shared test support: servers on loopback, clients, test Echo services,
//! test certificates, and raw HTTP/2 callers.
#![allow(dead_code)]

pub mod certs;
pub mod counting;
pub mod h2_client;
pub mod h2_frames;
pub mod unary;

use std::time::Duration;

use plexus_rpc::Server;
use plexus_rpc::client::{Channel, ClientBuilder};
use plexus_rpc::echo::v1::EchoRequest;
use plexus_rpc::echo::v1::echo_client::EchoClient;
use plexus_rpc::echo::v1::echo_server::{Echo, EchoServer};
use plexus_rpc::echo::{EchoService, FILE_DESCRIPTOR_SET};
use plexus_rpc::server::{Limits, ServerHandle};

/// Starts `service` as the Echo service on a free loopback port.
pub async fn start<E: Echo>(service: E) -> ServerHandle {
    start_with(Server::builder(), service).await
}

/// Starts `service` on a free loopback port with a configured builder.
pub async fn start_with<E: Echo>(builder: Server, service: E) -> ServerHandle {
    builder
        .add_service(EchoServer::new(service))
        .reflection(FILE_DESCRIPTOR_SET)
        .bind("127.0.0.1:0")
        .await
        .expect("bind loopback")
        .spawn()
}

/// Starts the stock Echo service with `limits`.
pub async fn start_echo_with_limits(limits: Limits) -> ServerHandle {
    start_with(Server::builder().limits(limits), EchoService).await
}

/// Bound on anything that should happen promptly.
pub const PROMPT: Duration = Duration::from_secs(5);

/// A plexus client of the server.
pub async fn client(server: &ServerHandle) -> EchoClient<Channel> {
    let channel = ClientBuilder::new(server.url())
        .connect()
        .await
        .expect("connect");
    EchoClient::new(channel)
}

/// A bare tonic client of the server (no plexus client layers).
pub async fn bare_client(server: &ServerHandle) -> EchoClient<tonic::transport::Channel> {
    let channel = tonic::transport::Endpoint::from_shared(server.url())
        .expect("valid url")
        .connect()
        .await
        .expect("connect");
    EchoClient::new(channel)
}

/// A small unary call on `client` must succeed, within [`PROMPT`]; `what`
/// says when, in the panic message.
pub async fn assert_serves(client: &mut EchoClient<Channel>, what: &str) {
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

/// A small unary call on a new connection to `server` must succeed.
pub async fn assert_serves_new_connection(server: &ServerHandle, what: &str) {
    let mut client = client(server).await;
    assert_serves(&mut client, what).await;
}

/// Waits until `condition` holds, checking every millisecond, for at most `bound`.
pub async fn wait_until(bound: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + bound;
    while tokio::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    condition()
}
