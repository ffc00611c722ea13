//! [`Server`]: collects services, limits, TLS and authorization; binds.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http::Request;
use tokio::net::TcpListener;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::{Routes, RoutesBuilder};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tower_service::Service;

use super::Limits;
use super::handle::ServerHandle;
use super::serve::{self, Stack};
use crate::auth::{AuthLayer, Policy, TokenVerifier};
use crate::error::Error;
use crate::tls::ServerTls;

/// Builds a plexus gRPC server. See the [module docs](super).
#[must_use = "a server does nothing until it is bound and served"]
pub struct Server {
    limits: Limits,
    tls: Option<ServerTls>,
    policy: Option<Policy>,
    tokens: Option<Arc<dyn TokenVerifier>>,
    routes: RoutesBuilder,
    service_names: Vec<&'static str>,
    descriptor_sets: Vec<&'static [u8]>,
}

impl Server {
    /// A server with default [`Limits`], no TLS and no authorization.
    pub fn builder() -> Self {
        Server {
            limits: Limits::default(),
            tls: None,
            policy: None,
            tokens: None,
            routes: RoutesBuilder::default(),
            service_names: Vec::new(),
            descriptor_sets: Vec::new(),
        }
    }

    /// Replaces the default limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Serves over TLS (mutual TLS when `tls` has a client CA).
    pub fn tls(mut self, tls: ServerTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Enforces a per-method authorization policy (default deny).
    pub fn authorize(mut self, policy: Policy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Accepts bearer tokens verified by `tokens` as an alternative to client
    /// certificates. Needs a policy ([`authorize`](Self::authorize)).
    pub fn bearer_tokens(mut self, tokens: impl TokenVerifier) -> Self {
        self.tokens = Some(Arc::new(tokens));
        self
    }

    /// Adds a tonic service (a generated `…Server`); health reports it serving.
    pub fn add_service<S>(mut self, service: S) -> Self
    where
        S: Service<Request<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.service_names.push(S::NAME);
        self.routes.add_service(service);
        self
    }

    /// Describes services to reflection clients with this encoded
    /// `FileDescriptorSet`.
    pub fn reflection(mut self, descriptor_set: &'static [u8]) -> Self {
        self.descriptor_sets.push(descriptor_set);
        self
    }

    /// Listens on `addr` (`127.0.0.1:0` picks a free port).
    pub async fn bind(self, addr: &str) -> Result<BoundServer, Error> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind {
                addr: addr.to_owned(),
                source,
            })?;
        self.listen(listener).await
    }

    /// Serves on an already bound listener.
    pub async fn listen(mut self, listener: TcpListener) -> Result<BoundServer, Error> {
        let local_addr = listener.local_addr()?;
        let tls = self.tls.as_ref().map(ServerTls::acceptor).transpose()?;
        if self.tokens.is_some() && self.policy.is_none() {
            return Err(Error::tls(
                "bearer tokens need an authorization policy; call Server::authorize",
            ));
        }
        let (health, health_service) = tonic_health::server::health_reporter();
        for name in &self.service_names {
            health
                .set_service_status(*name, ServingStatus::Serving)
                .await;
        }
        let v1 = self
            .reflection_builder()
            .build_v1()
            .map_err(|e| Error::tls(format!("reflection descriptors are invalid: {e}")))?;
        let v1alpha = self
            .reflection_builder()
            .build_v1alpha()
            .map_err(|e| Error::tls(format!("reflection descriptors are invalid: {e}")))?;
        self.routes
            .add_service(health_service)
            .add_service(v1)
            .add_service(v1alpha);
        let routes: Routes = self.routes.routes().prepare();
        let auth = self.policy.map(|policy| {
            let layer = AuthLayer::new(policy);
            match self.tokens {
                Some(tokens) => layer.with_tokens(tokens),
                None => layer,
            }
        });
        let stack = Stack::new(routes, auth, &self.limits);
        Ok(BoundServer {
            listener,
            local_addr,
            tls,
            stack,
            limits: self.limits,
            health,
        })
    }

    fn reflection_builder(&self) -> tonic_reflection::server::Builder<'static> {
        let mut builder = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
        for set in &self.descriptor_sets {
            builder = builder.register_encoded_file_descriptor_set(set);
        }
        builder
    }
}

/// A server listening on its address, not yet serving.
pub struct BoundServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stack: Stack,
    limits: Limits,
    health: HealthReporter,
}

impl BoundServer {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The health reporter, to mark services (not) serving.
    pub fn health(&self) -> HealthReporter {
        self.health.clone()
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets open
    /// calls finish within [`Limits::shutdown_grace`], and returns.
    pub async fn serve(self, shutdown: impl std::future::Future<Output = ()>) -> Result<(), Error> {
        serve::run(self.listener, self.tls, self.stack, self.limits, shutdown).await
    }

    /// Serves on a background task, stopped when the handle is shut down or dropped.
    pub fn spawn(self) -> ServerHandle {
        ServerHandle::spawn(self)
    }
}

impl std::fmt::Debug for BoundServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundServer")
            .field("local_addr", &self.local_addr)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}
