//! [`Gateway`]: built from descriptor sets and upstream channels, served on
//! a TCP listener.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use bytes::Bytes;
use plexus_rpc::client::Channel;
use prost_reflect::{DescriptorPool, SerializeOptions};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::GatewayConfig;
use crate::error::Error;
use crate::extra;
use crate::handler;
use crate::listener::Limited;
use crate::openapi;
use crate::routes::{Route, RouteTable};
use crate::rule::{self, HTTP_OPTION};
use crate::slots::Slots;
use crate::transcode;
use crate::transcoder::Transcoder;
use crate::upstream::CallLimits;

/// What every request of one gateway shares.
pub(crate) struct Shared {
    pub(crate) routes: RouteTable,
    pub(crate) channels: Vec<Channel>,
    pub(crate) pool: DescriptorPool,
    /// JSON to protobuf and back for unary calls.
    pub(crate) transcoder: Transcoder,
    pub(crate) config: GatewayConfig,
    pub(crate) serialize: SerializeOptions,
    pub(crate) call_limits: CallLimits,
    pub(crate) requests: Arc<Slots>,
    pub(crate) streams: Arc<Slots>,
    pub(crate) openapi: Bytes,
    /// Fires when the gateway begins to shut down: open streams end.
    pub(crate) closing: CancellationToken,
}

/// A REST/JSON gateway in front of gRPC services.
///
/// Build one with [`Gateway::builder`]; serve it with [`bind`](Self::bind),
/// or mount its [`router`](Self::router) in an axum application.
#[derive(Clone)]
pub struct Gateway {
    shared: Arc<Shared>,
    extra: Option<Router>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let routes: Vec<String> = self.routes();
        f.debug_struct("Gateway").field("routes", &routes).finish()
    }
}

/// Builds a [`Gateway`]: descriptor sets, one upstream channel per
/// service, and the [`GatewayConfig`].
#[must_use = "a builder does nothing until `build` is called"]
pub struct GatewayBuilder {
    pool: DescriptorPool,
    error: Option<Error>,
    upstreams: Vec<(String, Channel)>,
    config: GatewayConfig,
    extra: Option<Router>,
}

impl std::fmt::Debug for GatewayBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let services: Vec<&str> = self.upstreams.iter().map(|(s, _)| s.as_str()).collect();
        f.debug_struct("GatewayBuilder")
            .field("services", &services)
            .field("config", &self.config)
            .finish()
    }
}

impl Gateway {
    /// A builder with no descriptors, no upstreams and the default config.
    pub fn builder() -> GatewayBuilder {
        GatewayBuilder {
            pool: DescriptorPool::new(),
            error: None,
            upstreams: Vec::new(),
            config: GatewayConfig::default(),
            extra: None,
        }
    }

    /// Every route, as `METHOD /template -> package.Service.Method`.
    pub fn routes(&self) -> Vec<String> {
        self.shared
            .routes
            .iter()
            .map(|r| format!("{} -> {}", r.spec.describe(), r.rpc.full_name()))
            .collect()
    }

    /// The OpenAPI 3 document served at `/openapi.json`.
    pub fn openapi_json(&self) -> &[u8] {
        &self.shared.openapi
    }

    /// An axum router that serves every route, `/openapi.json` and the
    /// [extra routes](GatewayBuilder::extra_routes); any other path is a
    /// JSON 404.
    pub fn router(&self) -> Router {
        let gateway = Router::new()
            .fallback(|State(shared): State<Arc<Shared>>, request: Request| {
                handler::handle(shared, request)
            })
            .with_state(Arc::clone(&self.shared));
        match &self.extra {
            Some(routes) => extra::wrap(routes.clone(), Arc::clone(&self.shared)).merge(gateway),
            None => gateway,
        }
    }

    /// Binds a TCP listener on `addr` (e.g. `127.0.0.1:0`).
    pub async fn bind(self, addr: &str) -> Result<BoundGateway, Error> {
        let listener = TcpListener::bind(addr).await.map_err(|source| Error::Io {
            addr: addr.to_owned(),
            source,
        })?;
        self.listen(listener)
    }

    /// Serves on an already bound listener.
    pub fn listen(self, listener: TcpListener) -> Result<BoundGateway, Error> {
        let local_addr = listener.local_addr().map_err(|source| Error::Io {
            addr: "listener".to_owned(),
            source,
        })?;
        Ok(BoundGateway {
            gateway: self,
            listener,
            local_addr,
        })
    }
}

impl GatewayBuilder {
    /// Adds the encoded `FileDescriptorSet` of the protos to expose (with
    /// their imports, including `google/api/annotations.proto`). May be
    /// called several times; a set that cannot be read fails
    /// [`build`](Self::build).
    pub fn descriptor_set(mut self, bytes: &[u8]) -> Self {
        if self.error.is_none()
            && let Err(source) = self.pool.decode_file_descriptor_set(bytes)
        {
            self.error = Some(Error::Descriptors { source });
        }
        self
    }

    /// Sends the calls of `service` (fully qualified, e.g.
    /// `shop.orders.v1.Orders`) to `channel`. Every annotated method of the
    /// service gets its routes.
    pub fn upstream(mut self, service: impl Into<String>, channel: Channel) -> Self {
        self.upstreams.push((service.into(), channel));
        self
    }

    /// Sends the calls of `service` to a plexus client of `url` (plain
    /// `http://`), which connects on the first call and reconnects as
    /// needed. For TLS or credentials, build the channel with
    /// [`ClientBuilder`](plexus_rpc::client::ClientBuilder) and pass it to
    /// [`upstream`](Self::upstream).
    pub fn upstream_url(mut self, service: impl Into<String>, url: impl Into<String>) -> Self {
        let service = service.into();
        match plexus_rpc::client::ClientBuilder::new(url).connect_lazy() {
            Ok(channel) => self.upstreams.push((service, channel)),
            Err(source) => {
                self.error
                    .get_or_insert(Error::Upstream { service, source });
            }
        }
        self
    }

    /// Replaces the configuration.
    pub fn config(mut self, config: GatewayConfig) -> Self {
        self.config = config;
        self
    }

    /// Serves the routes of `routes` (plain axum handlers: health, webhooks,
    /// hand-written endpoints) on the gateway beside its transcoded ones,
    /// behind the same per-request handling: a request slot
    /// (`max_concurrent_requests`, 503 past it), the body limit
    /// (`max_body_bytes`: a larger declared body is a 413, and axum's body
    /// extractors stop there), the deadline and trace headers (a malformed
    /// timeout is a 400; the handler runs inside a
    /// [`CallContext`](plexus_rpc::CallContext) holding them, so plexus
    /// clients called from it propagate the remaining budget and the trace;
    /// when the deadline passes first, the answer is 504
    /// `DEADLINE_EXCEEDED`). Those refusals have the gateway's JSON error
    /// body; a handler answers its own errors, e.g. with
    /// [`ApiError`](crate::ApiError). A path served here is not also
    /// transcoded. May be called several times; the routers are merged.
    ///
    /// # Panics
    ///
    /// If a route of `routes` is already served by an earlier call (as
    /// [`Router::merge`] panics).
    pub fn extra_routes(mut self, routes: Router) -> Self {
        self.extra = Some(match self.extra.take() {
            Some(earlier) => earlier.merge(routes),
            None => routes,
        });
        self
    }

    /// Reads every binding of every upstream's service and builds the
    /// routes and the OpenAPI document.
    pub fn build(self) -> Result<Gateway, Error> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let option = self
            .pool
            .get_extension_by_name(HTTP_OPTION)
            .ok_or(Error::MissingAnnotations)?;
        let mut routes = RouteTable::default();
        let mut channels = Vec::new();
        for (index, (name, channel)) in self.upstreams.into_iter().enumerate() {
            let service = self.pool.get_service_by_name(&name).ok_or_else(|| {
                let known: Vec<String> = self
                    .pool
                    .services()
                    .map(|s| s.full_name().to_owned())
                    .collect();
                Error::UnknownService {
                    service: name.clone(),
                    known: if known.is_empty() {
                        String::new()
                    } else {
                        format!("; known services: {}", known.join(", "))
                    },
                }
            })?;
            let mut exposed = 0;
            for method in service.methods() {
                let specs =
                    rule::bindings(&method, &option).map_err(|reason| Error::InvalidBinding {
                        method: method.full_name().to_owned(),
                        binding: "google.api.http".to_owned(),
                        reason,
                    })?;
                for (position, spec) in specs.into_iter().enumerate() {
                    let binding = spec.describe();
                    let route =
                        Route::compile(&method, spec, index, position).map_err(|reason| {
                            Error::InvalidBinding {
                                method: method.full_name().to_owned(),
                                binding,
                                reason,
                            }
                        })?;
                    routes.add(route)?;
                    exposed += 1;
                }
            }
            if exposed == 0 {
                return Err(Error::NothingToExpose { service: name });
            }
            channels.push(channel);
        }
        let openapi = openapi::document(&routes);
        let openapi = Bytes::from(serde_json::to_vec_pretty(&openapi).unwrap_or_default());
        let config = self.config;
        let shared = Shared {
            routes,
            channels,
            transcoder: Transcoder::new(&self.pool, config.emit_unpopulated),
            pool: self.pool,
            serialize: transcode::serialize_options(config.emit_unpopulated),
            call_limits: CallLimits {
                max_request_bytes: config.max_body_bytes.max(4 * 1024 * 1024),
                max_response_bytes: config.max_response_message_bytes,
            },
            requests: Slots::new(config.max_concurrent_requests),
            streams: Slots::new(config.max_concurrent_streams),
            openapi,
            config,
            closing: CancellationToken::new(),
        };
        Ok(Gateway {
            shared: Arc::new(shared),
            extra: self.extra,
        })
    }
}

/// A gateway bound to its listener, not yet serving.
#[derive(Debug)]
pub struct BoundGateway {
    gateway: Gateway,
    listener: TcpListener,
    local_addr: SocketAddr,
}

impl BoundGateway {
    /// The address the gateway listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` resolves, then stops accepting, ends open
    /// streams (with an `UNAVAILABLE` error event) and lets unary requests
    /// finish.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let addr = self.local_addr.to_string();
        let closing = self.gateway.shared.closing.clone();
        let listener = Limited::new(self.listener, self.gateway.shared.config.max_connections);
        axum::serve(listener, self.gateway.router())
            .with_graceful_shutdown(async move {
                shutdown.await;
                closing.cancel();
            })
            .await
            .map_err(|source| Error::Io { addr, source })
    }

    /// Serves on a background task.
    pub fn spawn(self) -> GatewayHandle {
        let local_addr = self.local_addr;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(self.serve(async move {
            let _ = stopped.await;
        }));
        GatewayHandle {
            local_addr,
            stop: Some(stop),
            task: Some(task),
        }
    }
}

/// A gateway serving on a background task. [`shutdown`](Self::shutdown)
/// stops it gracefully; dropping the handle stops it at once.
#[derive(Debug)]
pub struct GatewayHandle {
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), Error>>>,
}

impl GatewayHandle {
    /// The address the gateway listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://` plus the address, for clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// Stops accepting, lets open requests finish, and waits for the
    /// gateway to stop.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(|e| Error::Io {
                addr: self.local_addr.to_string(),
                source: std::io::Error::other(e),
            })?,
            None => Ok(()),
        }
    }
}

impl Drop for GatewayHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
