//! The two stacks under test: their servers, channels and the call a worker
//! repeats.

use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use plexus_rpc::client::ClientBuilder;
use plexus_rpc::echo::EchoService;
use plexus_rpc::echo::v1::echo_client::EchoClient;
use plexus_rpc::echo::v1::echo_server::EchoServer;
use plexus_rpc::echo::v1::{EchoRequest, StreamRequest};
use plexus_rpc::server::{Limits, ServerHandle};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Endpoint;
use tonic::transport::server::TcpIncoming;

use super::{ClientKind, Kind};
use crate::bench::load::Caller;

/// Which stack a measurement runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stack {
    /// `plexus_rpc::Server`, called through a plain tonic channel or a
    /// `ClientBuilder` channel (see `--client`).
    Plexus,
    /// `tonic::transport::Server` and a plain `Endpoint` channel.
    Bare,
}

/// Both servers, serving the same service on loopback.
pub struct Servers {
    plexus: ServerHandle,
    plexus_client: ClientKind,
    bare: BareServer,
}

/// HTTP/2 keepalive settings for the bare server: by default it has none,
/// while a plexus server pings idle connections (plexus clients do not,
/// unless asked to).
#[derive(Debug, Clone, Copy)]
pub struct Keepalive {
    interval: Duration,
    timeout: Duration,
}

impl Keepalive {
    /// The keepalive a plexus server uses by default.
    pub fn plexus_default() -> Self {
        let limits = Limits::default();
        Keepalive {
            interval: limits.http2_keepalive_interval,
            timeout: limits.http2_keepalive_timeout,
        }
    }
}

/// A bare tonic server on a background task.
struct BareServer {
    url: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl Servers {
    /// Starts both servers on free loopback ports; the bare one with
    /// `bare_keepalive`, if given.
    pub async fn start(
        service: EchoService,
        bare_keepalive: Option<Keepalive>,
        plexus_client: ClientKind,
    ) -> anyhow::Result<Self> {
        let plexus = plexus_rpc::Server::builder()
            .add_service(EchoServer::new(service))
            .bind("127.0.0.1:0")
            .await
            .context("cannot start the plexus server")?
            .spawn();

        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot bind a loopback port for the bare tonic server")?;
        let url = format!("http://{}", listener.local_addr()?);
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let (stop, stopped) = oneshot::channel::<()>();
        let mut builder = tonic::transport::Server::builder();
        if let Some(keepalive) = bare_keepalive {
            builder = builder
                .http2_keepalive_interval(Some(keepalive.interval))
                .http2_keepalive_timeout(Some(keepalive.timeout));
        }
        let task = tokio::spawn(
            builder
                .add_service(EchoServer::new(service))
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stopped.await;
                }),
        );
        Ok(Servers {
            plexus,
            plexus_client,
            bare: BareServer { url, stop, task },
        })
    }

    /// A new channel (a new connection) of `stack` to its server.
    pub async fn connect(&self, stack: Stack) -> anyhow::Result<Channel> {
        match stack {
            Stack::Plexus => match self.plexus_client {
                ClientKind::Plexus => {
                    let channel = ClientBuilder::new(self.plexus.url()).connect().await?;
                    Ok(Channel::Plexus(channel))
                }
                ClientKind::Bare => Channel::bare(&self.plexus.url()).await,
            },
            Stack::Bare => Channel::bare(&self.bare.url).await,
        }
    }

    /// Stops both servers and waits for them.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.plexus
            .shutdown()
            .await
            .context("the plexus server failed")?;
        let _ = self.bare.stop.send(());
        self.bare
            .task
            .await
            .context("the bare tonic server task panicked")?
            .context("the bare tonic server failed")
    }
}

/// A connected channel of either stack.
#[derive(Clone)]
pub enum Channel {
    /// A plexus client channel (deadline and trace propagation).
    Plexus(plexus_rpc::client::Channel),
    /// A plain tonic channel.
    Bare(tonic::transport::Channel),
}

impl Channel {
    /// Connects a plain tonic channel to `url`.
    pub async fn bare(url: &str) -> anyhow::Result<Self> {
        let endpoint = Endpoint::from_shared(url.to_owned())
            .with_context(|| format!("invalid bare tonic server URL {url}"))?;
        let channel = endpoint
            .connect()
            .await
            .with_context(|| format!("cannot connect to the bare tonic server at {url}"))?;
        Ok(Channel::Bare(channel))
    }
}

/// An Echo client of either stack.
enum Client {
    Plexus(EchoClient<plexus_rpc::client::Channel>),
    Bare(EchoClient<tonic::transport::Channel>),
}

/// Runs `$body` with `$client` bound to the Echo client of either stack.
macro_rules! on_client {
    ($target:expr, $client:ident => $body:expr) => {
        match $target {
            Client::Plexus($client) => $body,
            Client::Bare($client) => $body,
        }
    };
}

/// One worker's call: a unary echo, or a whole server stream drained.
pub struct EchoCaller {
    client: Client,
    kind: Kind,
    payload: Bytes,
    replies: u32,
}

impl EchoCaller {
    /// A caller on `channel` (sharing its connection) sending `payload`
    /// bytes and, for streams, asking for `replies` replies.
    pub fn new(channel: &Channel, kind: Kind, payload: usize, replies: u32) -> Self {
        let client = match channel {
            Channel::Plexus(channel) => Client::Plexus(EchoClient::new(channel.clone())),
            Channel::Bare(channel) => Client::Bare(EchoClient::new(channel.clone())),
        };
        EchoCaller {
            client,
            kind,
            payload: Bytes::from(vec![0x5a; payload]),
            replies,
        }
    }
}

impl Caller for EchoCaller {
    async fn call(&mut self) -> anyhow::Result<u64> {
        let payload = self.payload.clone();
        match self.kind {
            Kind::Unary => {
                let reply = on_client!(&mut self.client, client => client.unary(EchoRequest { payload }).await)?;
                let echoed = reply.into_inner().payload.len();
                anyhow::ensure!(
                    echoed == self.payload.len(),
                    "Echo/Unary returned {echoed} bytes for {} sent",
                    self.payload.len()
                );
                Ok(1)
            }
            Kind::ServerStream => {
                let request = StreamRequest {
                    payload,
                    count: self.replies,
                };
                let mut stream =
                    on_client!(&mut self.client, client => client.server_stream(request).await)?
                        .into_inner();
                let mut received = 0u64;
                while stream.message().await?.is_some() {
                    received += 1;
                }
                anyhow::ensure!(
                    received == u64::from(self.replies),
                    "Echo/ServerStream returned {received} replies for {} asked",
                    self.replies
                );
                Ok(received)
            }
        }
    }
}
