//! The servers under test, all in this process on loopback TCP:
//!
//! - a [`plexus_rpc::Server`] serving `Quotes` (scenario `grpc`, and the
//!   upstream of the gateway);
//! - a plexus gateway in front of it, whose `POST /v1/quote` transcodes to
//!   `Quotes/Quote` (scenario `gateway`) and which also serves the plain
//!   JSON handler as one of its own routes, behind its request handling
//!   (scenario `plexus-http`);
//! - a bare axum server with the plain JSON handler (scenario `axum`) and
//!   the hop handler, one route per payload (scenario `http-hop`).
//!
//! Both HTTP servers are `axum::serve` on a listener that sets
//! `TCP_NODELAY` (the gateway's listener does; the bare one is given the
//! same), so the comparison is about what runs per request.

use anyhow::Context as _;
use axum::Router;
use axum::routing::post;
use axum::serve::ListenerExt as _;
use plexus_gateway::{Gateway, GatewayHandle};
use plexus_rpc::server::ServerHandle;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Endpoint;
use tower::Layer as _;

use super::plain::{self, HOP_PATH, QUOTE_PATH};
use super::quote::{FILE_DESCRIPTOR_SET, QuoteService, QuotesServer, SERVICE};
use super::wire::{CountingConnector, WireCounter};
use super::{Fixture, Payload};

/// Every server of the bench.
pub struct Servers {
    rpc: ServerHandle,
    gateway: GatewayHandle,
    /// What the gateway's upstream connection to the gRPC server moves.
    upstream_wire: WireCounter,
    bare: BareAxum,
}

/// The bare axum server on a background task.
struct BareAxum {
    url: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Servers {
    /// Starts every server on a free loopback port; the hop answers each
    /// fixture's reply.
    pub async fn start(fixtures: &[Fixture]) -> anyhow::Result<Self> {
        let rpc = plexus_rpc::Server::builder()
            .add_service(QuotesServer::new(QuoteService))
            .bind("127.0.0.1:0")
            .await
            .context("cannot start the plexus gRPC server")?
            .spawn();

        let upstream_wire = WireCounter::default();
        let upstream = plexus_channel(&rpc.url(), upstream_wire.clone()).await?;
        let plain_routes = Router::new().route(QUOTE_PATH, post(plain::quote));
        let gateway = Gateway::builder()
            .descriptor_set(FILE_DESCRIPTOR_SET)
            .upstream(SERVICE, upstream)
            .extra_routes(plain_routes)
            .build()
            .context("cannot build the gateway")?
            .bind("127.0.0.1:0")
            .await
            .context("cannot start the gateway")?
            .spawn();

        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot bind a loopback port for the bare axum server")?;
        let url = format!("http://{}", listener.local_addr()?);
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let mut router = Router::new().route(QUOTE_PATH, post(plain::quote));
        for fixture in fixtures {
            let reply = fixture.reply_json.clone();
            router = router.route(
                &hop_path(fixture.payload),
                post(move |body| plain::hop(reply.clone(), body)),
            );
        }
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(Servers {
            rpc,
            gateway,
            upstream_wire,
            bare: BareAxum { url, stop, task },
        })
    }

    /// The gRPC server's URL.
    pub fn rpc_url(&self) -> String {
        self.rpc.url()
    }

    /// The gateway's URL.
    pub fn gateway_url(&self) -> String {
        self.gateway.url()
    }

    /// The bare axum server's URL.
    pub fn bare_url(&self) -> &str {
        &self.bare.url
    }

    /// The counter of the gateway's upstream connection.
    pub fn upstream_wire(&self) -> &WireCounter {
        &self.upstream_wire
    }

    /// Stops every server and waits for them.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.gateway
            .shutdown()
            .await
            .context("the gateway failed")?;
        self.rpc
            .shutdown()
            .await
            .context("the plexus gRPC server failed")?;
        let _ = self.bare.stop.send(());
        self.bare
            .task
            .await
            .context("the bare axum server task panicked")?
            .context("the bare axum server failed")
    }
}

/// The hop's route for `payload`.
pub fn hop_path(payload: Payload) -> String {
    format!("{HOP_PATH}/{}", payload.name())
}

/// A plexus client channel to `url` (the client layer of
/// [`ClientBuilder`](plexus_rpc::client::ClientBuilder): deadline, trace and
/// cancellation propagation) whose one HTTP/2 connection adds to `wire`.
pub async fn plexus_channel(
    url: &str,
    wire: WireCounter,
) -> anyhow::Result<plexus_rpc::client::Channel> {
    let channel = Endpoint::from_shared(url.to_owned())
        .with_context(|| format!("invalid gRPC server URL {url}"))?
        .connect_with_connector(CountingConnector::new(wire))
        .await
        .with_context(|| format!("cannot connect to the gRPC server at {url}"))?;
    Ok(plexus_rpc::client::PropagateLayer::new().layer(channel))
}
