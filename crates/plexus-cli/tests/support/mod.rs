//! Servers for `plexus call` to talk to, and a runner for the built binary.
#![allow(dead_code)]

pub mod certs;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use plexus_rpc::echo::v1::echo_server::{Echo, EchoServer};
use plexus_rpc::echo::v1::{EchoReply, EchoRequest, StreamRequest};
use plexus_rpc::echo::{EchoService, FILE_DESCRIPTOR_SET, ReplyStream};
use plexus_rpc::server::ServerHandle;
use plexus_rpc::{CallContext, Server};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status, Streaming};

/// Longest a single run of the binary may take before the test fails.
const RUN_BOUND: Duration = Duration::from_secs(60);

/// What one run of `plexus` did.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The non-empty lines of standard output.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().filter(|l| !l.is_empty()).collect()
    }
}

/// Runs `plexus ARGS` to completion.
pub async fn plexus(args: &[&str]) -> Run {
    plexus_with_stdin(args, None).await
}

/// Runs `plexus ARGS`, writing `stdin` (then closing it) when given.
pub async fn plexus_with_stdin(args: &[&str], stdin: Option<&str>) -> Run {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_plexus"))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the plexus binary starts");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(text.as_bytes()).await.unwrap();
        drop(pipe);
    }
    let output = tokio::time::timeout(RUN_BOUND, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("plexus {args:?} did not finish within {RUN_BOUND:?}"))
        .unwrap();
    Run {
        code: output.status.code(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// The stock Echo service with reflection on a plexus server.
pub async fn echo_server() -> ServerHandle {
    serve(Server::builder(), EchoService).await
}

/// `service` as the Echo service, with reflection, on a free loopback port.
pub async fn serve<E: Echo>(builder: Server, service: E) -> ServerHandle {
    builder
        .add_service(EchoServer::new(service))
        .reflection(FILE_DESCRIPTOR_SET)
        .bind("127.0.0.1:0")
        .await
        .expect("bind loopback")
        .spawn()
}

/// Which reflection a bare tonic server offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BareReflection {
    None,
    V1AlphaOnly,
}

/// A bare tonic server (no plexus layers) with the stock Echo service;
/// stops when dropped.
pub struct BareServer {
    pub addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl BareServer {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

pub async fn bare_server(reflection: BareReflection) -> BareServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let mut router = tonic::transport::Server::builder().add_service(EchoServer::new(EchoService));
    if reflection == BareReflection::V1AlphaOnly {
        let v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .build_v1alpha()
            .unwrap();
        router = router.add_service(v1alpha);
    }
    tokio::spawn(
        router.serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
            let _ = stopped.await;
        }),
    );
    BareServer { addr, _stop: stop }
}

/// What the test Echo's `Unary` does differently from the stock one.
#[derive(Debug, Clone, Copy)]
pub enum Unary {
    /// Never answers (until the call is cancelled).
    Stalls,
    /// Answers with `<x-tenant header>|<authorization header>` as payload
    /// and the remaining deadline, in milliseconds, as sequence (0: none).
    EchoesHeaders,
}

/// The stock Echo service except for `Unary`.
#[derive(Debug, Clone, Copy)]
pub struct TestEcho(pub Unary);

#[tonic::async_trait]
impl Echo for TestEcho {
    async fn unary(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        match self.0 {
            Unary::Stalls => std::future::pending().await,
            Unary::EchoesHeaders => {
                let header = |name: &str| {
                    request
                        .metadata()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-")
                        .to_owned()
                };
                let payload = format!("{}|{}", header("x-tenant"), header("authorization"));
                let remaining = CallContext::from_request(&request)
                    .and_then(CallContext::deadline)
                    .map_or(0, |deadline| deadline.remaining().as_millis());
                Ok(Response::new(EchoReply {
                    payload: payload.into_bytes().into(),
                    sequence: u64::try_from(remaining).unwrap(),
                }))
            }
        }
    }

    type ServerStreamStream = ReplyStream;

    async fn server_stream(
        &self,
        request: Request<StreamRequest>,
    ) -> Result<Response<ReplyStream>, Status> {
        EchoService.server_stream(request).await
    }

    async fn client_stream(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<EchoReply>, Status> {
        EchoService.client_stream(request).await
    }

    type BidiStream = ReplyStream;

    async fn bidi(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<ReplyStream>, Status> {
        EchoService.bidi(request).await
    }
}
