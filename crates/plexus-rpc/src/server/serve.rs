//! The connection loop: accept, TLS handshake, HTTP/2 with explicit limits,
//! graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures::future::Either;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic::service::Routes;
use tower_layer::Layer;
use tower_service::Service;

use super::timer::Timer;
use super::unimplemented::NameUnimplemented;
use super::wake_gate::WakeGate;
use super::{ConnectionInfo, Limits};
use crate::auth::{Auth, AuthLayer, Identity};
use crate::context::{Context, ContextBody, ContextLayer};
use crate::error::Error;
use crate::limit::{LimitedBody, MessageSize, MessageSizeLayer};

/// The per-call service stack, shared by every connection: context, then
/// message-size limits, then authorization (when a policy is set), then
/// tonic's router. Response bodies are wrapped, not boxed, on the way out.
#[derive(Clone)]
pub(crate) struct Stack {
    service: Context<MessageSize<Guarded>>,
}

/// The router, with or without authorization in front.
#[derive(Clone)]
enum Guarded {
    Open(Routes),
    Auth(Auth<Routes>),
}

impl Stack {
    pub(crate) fn new(routes: Routes, auth: Option<AuthLayer>, limits: &Limits) -> Self {
        let guarded = match auth {
            Some(auth) => Guarded::Auth(auth.layer(routes)),
            None => Guarded::Open(routes),
        };
        let sized = MessageSizeLayer::new(
            limits.max_decoding_message_size,
            limits.max_encoding_message_size,
        )
        .layer(guarded);
        Stack {
            service: ContextLayer::new().layer(sized),
        }
    }
}

type RoutesFuture = <Routes as Service<Request<Body>>>::Future;
type AuthFuture = <Auth<Routes> as Service<Request<Body>>>::Future;

impl Service<Request<Body>> for Guarded {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Either<RoutesFuture, AuthFuture>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        match self {
            Guarded::Open(s) => Service::<Request<Body>>::poll_ready(s, cx),
            Guarded::Auth(s) => s.poll_ready(cx),
        }
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        match self {
            Guarded::Open(s) => Either::Left(s.call(req)),
            Guarded::Auth(s) => Either::Right(s.call(req)),
        }
    }
}

/// The service hyper drives for one connection: tags each request with the
/// connection's [`ConnectionInfo`] and hands it to the stack.
#[derive(Clone)]
struct ConnectionService {
    stack: Stack,
    info: ConnectionInfo,
}

/// What a call answers with: the router's body behind the message-size and
/// context wrappers.
type CallBody = ContextBody<LimitedBody<Body>>;

impl hyper::service::Service<Request<Incoming>> for ConnectionService {
    type Response = Response<CallBody>;
    type Error = Infallible;
    type Future =
        NameUnimplemented<<Context<MessageSize<Guarded>> as Service<Request<Body>>>::Future>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let mut req = req.map(Body::new);
        req.extensions_mut().insert(self.info.clone());
        let uri = req.uri().clone();
        // Every layer of the stack is always ready (tonic's router is), so
        // the stack is called without waiting on `poll_ready`.
        NameUnimplemented::new(self.stack.service.clone().call(req), uri)
    }
}

pub(crate) async fn run(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    stack: Stack,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let mut shutdown = pin!(shutdown);
    let stop = CancellationToken::new();
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let http = Arc::new(http2_builder(&limits));
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => permit.expect("the connection semaphore is never closed"),
        };
        let (tcp, remote) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
        };
        let conn = Connection {
            tls: tls.clone(),
            stack: stack.clone(),
            http: http.clone(),
            handshake_timeout: limits.tls_handshake_timeout,
            stop: stop.clone(),
            _permit: permit,
        };
        connections.spawn(conn.run(tcp, remote));
    }
    drop(listener);
    stop.cancel();
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            grace = ?limits.shutdown_grace,
            "connections still open after the shutdown grace period; closing them"
        );
        connections.shutdown().await;
    }
    Ok(())
}

fn http2_builder(limits: &Limits) -> http2::Builder<TokioExecutor> {
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder
        .timer(Timer)
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_header_list_size(limits.max_header_list_size)
        .keep_alive_interval(limits.http2_keepalive_interval)
        .keep_alive_timeout(limits.http2_keepalive_timeout)
        .max_pending_accept_reset_streams(limits.http2_max_pending_accept_reset_streams)
        .max_local_error_reset_streams(limits.http2_max_local_error_reset_streams)
        .max_frame_size(limits.http2_max_frame_size)
        .initial_stream_window_size(limits.http2_initial_stream_window_size)
        .initial_connection_window_size(limits.http2_initial_connection_window_size)
        .max_send_buf_size(limits.http2_max_send_buffer_size);
    builder
}

async fn accept_error(e: std::io::Error) {
    // Out of file descriptors (EMFILE/ENFILE) and the like: back off briefly
    // instead of spinning; a connection reset before accept is just skipped.
    let transient = matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::Interrupted
    );
    if !transient {
        tracing::warn!(error = %e, "accept failed; retrying in 50 ms");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One accepted connection.
struct Connection {
    tls: Option<TlsAcceptor>,
    stack: Stack,
    http: Arc<http2::Builder<TokioExecutor>>,
    handshake_timeout: Duration,
    stop: CancellationToken,
    _permit: OwnedSemaphorePermit,
}

impl Connection {
    async fn run(self, tcp: TcpStream, remote: SocketAddr) {
        let _ = tcp.set_nodelay(true);
        let Some(acceptor) = self.tls.clone() else {
            let info = ConnectionInfo::new(remote, None);
            return self.serve(tcp, info).await;
        };
        let handshake = tokio::time::timeout(self.handshake_timeout, acceptor.accept(tcp));
        let stream = tokio::select! {
            _ = self.stop.cancelled() => return,
            result = handshake => match result {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::info!(%remote, error = %e, "TLS handshake refused");
                    return;
                }
                Err(_) => {
                    tracing::info!(%remote, timeout = ?self.handshake_timeout, "TLS handshake timed out");
                    return;
                }
            },
        };
        let identity = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(Identity::from_certificate);
        self.serve(stream, ConnectionInfo::new(remote, identity))
            .await
    }

    async fn serve<IO>(self, io: IO, info: ConnectionInfo)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let remote = info.remote_addr();
        let service = ConnectionService {
            stack: self.stack.clone(),
            info,
        };
        let mut conn = pin!(self.http.serve_connection(TokioIo::new(io), service));
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%remote, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = WakeGate::new(self.stop.cancelled()) => {}
        }
        conn.as_mut().graceful_shutdown();
        if let Err(e) = conn.await {
            tracing::debug!(%remote, error = %e, "connection ended with an error during shutdown");
        }
    }
}
