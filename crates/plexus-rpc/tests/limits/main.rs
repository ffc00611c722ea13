//! Every explicit limit of the plexus server (`server::Limits`), enforced
//! against real clients over loopback — and each time, the server keeps
//! serving other calls and connections afterwards.

#[path = "../support/mod.rs"]
mod support;

mod connections;
mod http2;
mod http2_resets;
mod message_size;

use std::time::Duration;

use plexus_rpc::Server;
use plexus_rpc::client::Channel;
use plexus_rpc::echo::v1::echo_client::EchoClient;
use plexus_rpc::echo::v1::{EchoReply, EchoRequest};
use plexus_rpc::server::{Limits, ServerHandle};
use support::PROMPT;
use support::counting::Counting;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

/// How long a call that must be held back is watched: far longer than a
/// normal call takes on loopback.
const HELD: Duration = Duration::from_millis(200);

const UNARY: &str = "/plexus.echo.v1.Echo/Unary";

/// The default limits, changed by `configure`.
fn limits(configure: impl FnOnce(&mut Limits)) -> Limits {
    let mut limits = Limits::default();
    configure(&mut limits);
    limits
}

/// A [`Counting`] echo served with `limits`, and a plexus client of it.
async fn start_counting(limits: Limits) -> (Counting, ServerHandle, EchoClient<Channel>) {
    let echo = Counting::new();
    let server = support::start_with(Server::builder().limits(limits), echo.clone()).await;
    let client = support::client(&server).await;
    (echo, server, client)
}

/// A bidi stream on `client`'s connection, proven open by a round trip of
/// `first`; it stays open until the sender is dropped.
async fn open_bidi(
    client: &EchoClient<Channel>,
    first: EchoRequest,
) -> (mpsc::Sender<EchoRequest>, Streaming<EchoReply>) {
    let (tx, rx) = mpsc::channel(4);
    let mut replies = client
        .clone()
        .bidi(ReceiverStream::new(rx))
        .await
        .expect("open a bidi stream")
        .into_inner();
    let payload = first.payload.clone();
    tx.send(first).await.expect("the stream takes a request");
    let reply = replies
        .message()
        .await
        .expect("a reply on an open stream")
        .expect("the stream is still open");
    assert_eq!(reply.payload, payload);
    (tx, replies)
}

/// Starts `call` on its own task and asserts that it is held back: not
/// complete after [`HELD`]. `why` says what should hold it.
async fn spawn_held<T: Send + 'static>(
    call: impl Future<Output = T> + Send + 'static,
    why: &str,
) -> JoinHandle<T> {
    let mut task = tokio::spawn(call);
    assert!(
        tokio::time::timeout(HELD, &mut task).await.is_err(),
        "completed within {HELD:?}, though {why}"
    );
    task
}

/// The outcome of a held call once the test released it, within [`PROMPT`].
async fn released<T>(task: JoinHandle<T>, what: &str) -> T {
    tokio::time::timeout(PROMPT, task)
        .await
        .unwrap_or_else(|_| panic!("{what}: still held {PROMPT:?} after its release"))
        .expect("the held call's task")
}

/// An `EchoRequest` with a payload of `len` bytes.
fn request(len: usize) -> EchoRequest {
    EchoRequest {
        payload: vec![7u8; len].into(),
    }
}
