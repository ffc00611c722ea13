//! Deadlines: an incoming `grpc-timeout` becomes the handler's deadline,
//! calls made while serving carry exactly the remaining budget, and expired
//! work is never started.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use plexus_core::{Deadline, TraceContext};
use plexus_rpc::CallContext;
use plexus_rpc::client::{Channel, ClientBuilder};
use plexus_rpc::echo::EchoService;
use plexus_rpc::echo::v1::echo_client::EchoClient;
use plexus_rpc::echo::v1::{EchoReply, EchoRequest, StreamRequest};
use support::h2_client::{GrpcReply, H2Client, grpc_body};
use support::unary::{Unary, UnaryEcho};
use tokio::sync::OnceCell;
use tonic::{Code, Request, Response, Status};

/// What one hop saw.
#[derive(Debug, Clone, Copy)]
struct Seen {
    /// The `grpc-timeout` it received, decoded.
    header: Duration,
    /// Its deadline's remaining budget on entry.
    budget_on_entry: Duration,
    /// Its deadline's remaining budget just before calling the next hop.
    budget_before_call: Option<Duration>,
}

/// A hop of the chain: records what it saw, then calls the next hop (if any).
#[derive(Clone)]
struct Hop {
    next: Arc<OnceCell<EchoClient<Channel>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Simulated work before calling on, so budgets visibly shrink.
    work: Duration,
}

impl Hop {
    fn new(work: Duration) -> Self {
        Hop {
            next: Arc::new(OnceCell::new()),
            seen: Arc::new(Mutex::new(Vec::new())),
            work,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

#[tonic::async_trait]
impl Unary for Hop {
    async fn unary(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        let header = request
            .metadata()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .map(|v| plexus_core::deadline::parse_grpc_timeout(v).unwrap())
            .ok_or_else(|| Status::failed_precondition("no grpc-timeout arrived"))?;
        let deadline = CallContext::from_request(&request)
            .and_then(CallContext::deadline)
            .ok_or_else(|| Status::failed_precondition("no deadline in the call context"))?;
        let budget_on_entry = deadline.remaining();
        tokio::time::sleep(self.work).await;
        let mut seen = Seen {
            header,
            budget_on_entry,
            budget_before_call: None,
        };
        let reply = match self.next.get() {
            Some(next) => {
                seen.budget_before_call = Some(deadline.remaining());
                self.seen.lock().unwrap().push(seen);
                next.clone().unary(request.into_inner()).await?.into_inner()
            }
            None => {
                self.seen.lock().unwrap().push(seen);
                EchoReply {
                    payload: request.into_inner().payload,
                    sequence: 0,
                }
            }
        };
        Ok(Response::new(reply))
    }
}

#[tokio::test]
async fn each_hop_of_a_three_hop_chain_sees_a_strictly_smaller_budget() {
    let hops = [
        Hop::new(Duration::from_millis(20)),
        Hop::new(Duration::from_millis(20)),
        Hop::new(Duration::ZERO),
    ];
    let mut servers = Vec::new();
    for hop in &hops {
        servers.push(support::start(UnaryEcho(hop.clone())).await);
    }
    for i in 0..2 {
        let channel = ClientBuilder::new(servers[i + 1].url())
            .connect()
            .await
            .unwrap();
        hops[i].next.set(EchoClient::new(channel)).ok().unwrap();
    }

    let mut client = support::client(&servers[0]).await;
    let mut request = Request::new(EchoRequest {
        payload: "chain".into(),
    });
    request.set_timeout(Duration::from_secs(2));
    let reply = client.unary(request).await.unwrap().into_inner();
    assert_eq!(reply.payload.as_ref(), b"chain");

    let seen: Vec<Seen> = hops.iter().map(|h| h.seen()[0]).collect();
    assert!(seen[0].header <= Duration::from_secs(2), "{seen:?}");
    for i in 0..3 {
        // The handler's deadline is the budget that arrived, counted from arrival.
        assert!(
            seen[i].budget_on_entry <= seen[i].header,
            "hop {i}: {seen:?}"
        );
        assert!(
            seen[i].header - seen[i].budget_on_entry < Duration::from_millis(5),
            "hop {i}: {seen:?}"
        );
    }
    for i in 0..2 {
        let before_call = seen[i].budget_before_call.unwrap();
        let next = seen[i + 1];
        // Strictly smaller budget hop by hop, shrunk by at least the hop's work.
        assert!(
            next.budget_on_entry < seen[i].budget_on_entry,
            "hop {i}: {seen:?}"
        );
        assert!(
            seen[i].budget_on_entry - next.header >= Duration::from_millis(20),
            "hop {i}: {seen:?}"
        );
        // The next hop receives exactly what was left, never more.
        assert!(next.header <= before_call, "hop {i}: {seen:?}");
        assert!(
            before_call - next.header < Duration::from_millis(5),
            "hop {i}: {seen:?}"
        );
    }
}

/// A hop that waits until its call is over, recording that it was stopped.
#[derive(Clone, Default)]
struct Waiter {
    started: Arc<std::sync::atomic::AtomicUsize>,
    stopped: Arc<std::sync::atomic::AtomicUsize>,
}

struct Stopped(Arc<std::sync::atomic::AtomicUsize>);
impl Drop for Stopped {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tonic::async_trait]
impl Unary for Waiter {
    async fn unary(&self, _request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        self.started
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let _stopped = Stopped(self.stopped.clone());
        std::future::pending::<()>().await;
        unreachable!()
    }
}

/// A unary call sent raw with `grpc-timeout: timeout`: no client layer
/// enforces the deadline, so the answer is the server's.
async fn raw_unary(addr: SocketAddr, timeout: &str) -> GrpcReply {
    H2Client::call_once(
        addr,
        "/plexus.echo.v1.Echo/Unary",
        &[("grpc-timeout", timeout)],
        grpc_body(&EchoRequest::default()),
    )
    .await
    .expect("a raw HTTP/2 call")
}

#[tokio::test]
async fn a_deadline_passing_mid_call_stops_the_handler_and_answers_deadline_exceeded() {
    use std::sync::atomic::Ordering::SeqCst;
    let waiter = Waiter::default();
    let server = support::start(UnaryEcho(waiter.clone())).await;
    let started = std::time::Instant::now();
    let reply = raw_unary(server.local_addr(), "100m").await;
    assert_eq!(reply.code(), Some(Code::DeadlineExceeded), "{reply:?}");
    assert!(reply.message().contains("deadline passed"), "{reply:?}");
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert_eq!(waiter.started.load(SeqCst), 1);
    assert!(
        support::wait_until(Duration::from_millis(100), || waiter.stopped.load(SeqCst)
            == 1)
        .await,
        "the handler was not stopped when its deadline passed"
    );
}

#[tokio::test]
async fn the_client_enforces_the_deadline_when_the_server_does_not_answer() {
    let waiter = Waiter::default();
    let server = support::start(UnaryEcho(waiter.clone())).await;
    let mut client = support::client(&server).await;
    let ctx = CallContext::new(
        Some(Deadline::after(Duration::from_millis(80))),
        TraceContext::new_root(),
    );
    let started = std::time::Instant::now();
    let status = ctx
        .scope(client.unary(EchoRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn an_already_expired_deadline_is_not_sent_and_no_handler_runs() {
    use std::sync::atomic::Ordering::SeqCst;
    let waiter = Waiter::default();
    let server = support::start(UnaryEcho(waiter.clone())).await;
    let mut client = support::client(&server).await;
    let ctx = CallContext::new(
        Some(Deadline::after(Duration::ZERO)),
        TraceContext::new_root(),
    );
    let status = ctx
        .scope(client.unary(EchoRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(status.message().contains("was not made"), "{status:?}");

    // The same request sent raw with `grpc-timeout: 0n` reaches the server,
    // which refuses it without running the handler.
    let reply = raw_unary(server.local_addr(), "0n").await;
    assert_eq!(reply.code(), Some(Code::DeadlineExceeded), "{reply:?}");
    assert!(reply.message().contains("handler was not run"), "{reply:?}");
    assert_eq!(waiter.started.load(SeqCst), 0);
}

#[tokio::test]
async fn a_server_stream_outliving_its_deadline_ends_with_deadline_exceeded() {
    use tokio_stream::StreamExt;
    let server = support::start(EchoService).await;
    // A bare tonic client: the deadline is enforced by the server mid-stream.
    let mut client = support::bare_client(&server).await;
    let mut request = Request::new(StreamRequest {
        payload: vec![0u8; 1024].into(),
        count: plexus_rpc::echo::MAX_STREAM_COUNT,
    });
    request.set_timeout(Duration::from_millis(100));
    let mut stream = client.server_stream(request).await.unwrap().into_inner();
    let mut received = 0u64;
    let status = loop {
        match stream.next().await {
            Some(Ok(_)) => received += 1,
            Some(Err(status)) => break status,
            None => panic!("stream of {received} replies ended without an error"),
        }
    };
    assert_eq!(
        status.code(),
        Code::DeadlineExceeded,
        "{status:?} after {received} replies"
    );
    assert!(received < u64::from(plexus_rpc::echo::MAX_STREAM_COUNT));
}
