//! Retries: only idempotent calls, only on retryable outcomes, with
//! jittered exponential backoff, within the retry budget, and never past
//! the deadline. Virtual time (scripted mock services) except the last
//! tests, which run over real loopback gRPC servers.

mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body::Body as _;
use plexus_core::deadline::parse_grpc_timeout;
use plexus_core::{Deadline, TraceContext};
use plexus_rpc::CallContext;
use plexus_rpc::client::ClientBuilder;
use plexus_rpc::echo::v1::echo_client::EchoClient;
use plexus_rpc::echo::v1::{EchoReply, EchoRequest};
use plexus_rpc::retry::{Backoff, Idempotency, PUSHBACK_HEADER, Retry, RetryPolicy};
use rand::SeedableRng;
use support::unary::{Unary, UnaryEcho};
use tokio::time::Instant;
use tonic::body::Body;
use tonic::{Code, Status};
use tower::retry::budget::TpsBudget;
use tower::{Service, ServiceExt};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const UNARY: &str = "/plexus.echo.v1.Echo/Unary";

/// How a scripted service answers one attempt.
#[derive(Clone)]
enum Reply {
    Ok,
    Grpc(Code),
    GrpcPushback(Code, &'static str),
    Http(StatusCode),
    ConnectionRefused,
    /// Never answers (until the caller gives up).
    Hang,
}

/// What a scripted service saw of one attempt.
#[derive(Debug, Clone)]
struct Attempt {
    at: Instant,
    grpc_timeout: Option<Duration>,
    timeout_ms: Option<u64>,
    body: Bytes,
}

/// A service answering attempt `n` with `script(n)` after `latency`,
/// recording every attempt.
#[derive(Clone)]
struct Scripted {
    script: Arc<dyn Fn(usize) -> Reply + Send + Sync>,
    latency: Duration,
    attempts: Arc<Mutex<Vec<Attempt>>>,
}

impl Scripted {
    fn new(script: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Self {
        Scripted {
            script: Arc::new(script),
            latency: Duration::ZERO,
            attempts: Arc::default(),
        }
    }

    fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    fn attempts(&self) -> Vec<Attempt> {
        self.attempts.lock().unwrap().clone()
    }

    fn count(&self) -> usize {
        self.attempts.lock().unwrap().len()
    }
}

impl Service<Request<Body>> for Scripted {
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let this = self.clone();
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let grpc_timeout = header("grpc-timeout").map(|v| parse_grpc_timeout(&v).unwrap());
        let timeout_ms = header("plexus-timeout-ms").map(|v| v.parse().unwrap());
        Box::pin(async move {
            let at = Instant::now();
            let body = read(request.into_body()).await;
            let n = {
                let mut attempts = this.attempts.lock().unwrap();
                attempts.push(Attempt {
                    at,
                    grpc_timeout,
                    timeout_ms,
                    body,
                });
                attempts.len()
            };
            tokio::time::sleep(this.latency).await;
            match (this.script)(n) {
                Reply::Ok => Ok(Response::new(Body::empty())),
                Reply::Grpc(code) => Ok(Status::new(code, "scripted").into_http()),
                Reply::GrpcPushback(code, ms) => {
                    let mut response: Response<Body> = Status::new(code, "scripted").into_http();
                    response
                        .headers_mut()
                        .insert(PUSHBACK_HEADER, ms.parse().unwrap());
                    Ok(response)
                }
                Reply::Http(status) => {
                    let mut response = Response::new(Body::empty());
                    *response.status_mut() = status;
                    Ok(response)
                }
                Reply::ConnectionRefused => {
                    Err(std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into())
                }
                Reply::Hang => std::future::pending().await,
            }
        })
    }
}

async fn read(mut body: Body) -> Bytes {
    let mut bytes = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        if let Ok(data) = frame.unwrap().into_data() {
            bytes.extend_from_slice(&data);
        }
    }
    bytes.into()
}

fn grpc(path: &str) -> Request<Body> {
    Request::builder()
        .method(Method::POST)
        .uri(format!("http://svc{path}"))
        .header("content-type", "application/grpc")
        .body(Body::new(String::from("grpc-payload")))
        .unwrap()
}

fn grpc_with_timeout(path: &str, timeout: &str) -> Request<Body> {
    let mut request = grpc(path);
    request
        .headers_mut()
        .insert("grpc-timeout", timeout.parse().unwrap());
    request
}

fn http(method: Method, path: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(format!("http://svc{path}"))
        .body(Body::new(String::from("http-payload")))
        .unwrap()
}

/// Quick retries (1 ms doubling to 8 ms) and a budget no test here
/// exhausts, except the one about the budget.
fn quick() -> RetryPolicy {
    RetryPolicy::new()
        .backoff(Backoff::new(
            Duration::from_millis(1),
            Duration::from_millis(8),
        ))
        .budget(TpsBudget::new(Duration::from_secs(10), 10_000, 0.2))
        .idempotency(Idempotency::new().grpc_method(UNARY))
}

async fn send(
    service: &mut Retry<Scripted>,
    request: Request<Body>,
) -> Result<Response<Body>, BoxError> {
    service.ready().await?.call(request).await
}

fn grpc_code(result: &Result<Response<Body>, BoxError>) -> Code {
    match result {
        Ok(response) => {
            tonic::Status::from_header_map(response.headers()).map_or(Code::Ok, |s| s.code())
        }
        Err(error) => error
            .downcast_ref::<Status>()
            .map_or(Code::Unknown, Status::code),
    }
}

#[tokio::test(start_paused = true)]
async fn idempotent_call_is_retried_until_it_succeeds_with_the_same_body() {
    let mock = Scripted::new(|n| {
        if n <= 2 {
            Reply::Grpc(Code::Unavailable)
        } else {
            Reply::Ok
        }
    });
    let mut retry = Retry::new(mock.clone(), quick().max_attempts(5));
    let result = send(&mut retry, grpc(UNARY)).await;
    assert_eq!(grpc_code(&result), Code::Ok);
    let attempts = mock.attempts();
    assert_eq!(attempts.len(), 3);
    for attempt in &attempts {
        assert_eq!(attempt.body.as_ref(), b"grpc-payload");
    }
}

#[tokio::test(start_paused = true)]
async fn attempts_stop_at_max_attempts() {
    let mock = Scripted::new(|_| Reply::Grpc(Code::Unavailable));
    let mut retry = Retry::new(mock.clone(), quick().max_attempts(4));
    let result = send(&mut retry, grpc(UNARY)).await;
    assert_eq!(grpc_code(&result), Code::Unavailable);
    assert_eq!(mock.count(), 4);
}

#[tokio::test(start_paused = true)]
async fn non_idempotent_calls_are_never_retried() {
    let mock = Scripted::new(|_| Reply::Grpc(Code::Unavailable));
    let mut retry = Retry::new(mock.clone(), quick().max_attempts(5));
    let result = send(&mut retry, grpc("/plexus.echo.v1.Echo/ClientStream")).await;
    assert_eq!(grpc_code(&result), Code::Unavailable);
    assert_eq!(mock.count(), 1, "an undeclared gRPC method is sent once");

    let mock = Scripted::new(|_| Reply::Http(StatusCode::SERVICE_UNAVAILABLE));
    let mut retry = Retry::new(mock.clone(), quick().max_attempts(5));
    let response = send(&mut retry, http(Method::POST, "/v1/orders"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(mock.count(), 1, "an HTTP POST is sent once");

    let mock = Scripted::new(|_| Reply::Http(StatusCode::SERVICE_UNAVAILABLE));
    let mut retry = Retry::new(
        mock.clone(),
        quick().max_attempts(5).idempotency(Idempotency::none()),
    );
    send(&mut retry, http(Method::GET, "/v1/orders/1"))
        .await
        .unwrap();
    assert_eq!(
        mock.count(),
        1,
        "with Idempotency::none even GET is sent once"
    );
}

#[tokio::test(start_paused = true)]
async fn http_idempotent_methods_and_routes_are_retried_on_502_503_504_and_connection_errors() {
    let mock = Scripted::new(|n| match n {
        1 => Reply::Http(StatusCode::BAD_GATEWAY),
        2 => Reply::Http(StatusCode::SERVICE_UNAVAILABLE),
        3 => Reply::Http(StatusCode::GATEWAY_TIMEOUT),
        4 => Reply::ConnectionRefused,
        _ => Reply::Ok,
    });
    let mut retry = Retry::new(mock.clone(), quick().max_attempts(6));
    let response = send(&mut retry, http(Method::GET, "/v1/orders/1"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(mock.count(), 5);

    let mock = Scripted::new(|n| {
        if n == 1 {
            Reply::Http(StatusCode::BAD_GATEWAY)
        } else {
            Reply::Ok
        }
    });
    let policy =
        quick().idempotency(Idempotency::new().http_route(Method::POST, "/v1/orders/{id}/refresh"));
    let mut retry = Retry::new(mock.clone(), policy);
    send(&mut retry, http(Method::POST, "/v1/orders/7/refresh"))
        .await
        .unwrap();
    assert_eq!(mock.count(), 2, "a declared POST route is retried");

    let mock = Scripted::new(|_| Reply::Http(StatusCode::INTERNAL_SERVER_ERROR));
    let mut retry = Retry::new(mock.clone(), quick());
    send(&mut retry, http(Method::GET, "/v1/orders/1"))
        .await
        .unwrap();
    assert_eq!(mock.count(), 1, "500 is not retried");
}

#[tokio::test(start_paused = true)]
async fn only_retryable_grpc_codes_are_retried() {
    for (code, expected) in [
        (Code::Unavailable, 3),
        (Code::ResourceExhausted, 1),
        (Code::Internal, 1),
        (Code::InvalidArgument, 1),
        (Code::NotFound, 1),
        (Code::Aborted, 1),
    ] {
        let mock = Scripted::new(move |_| Reply::Grpc(code));
        let mut retry = Retry::new(mock.clone(), quick());
        let result = send(&mut retry, grpc(UNARY)).await;
        assert_eq!(grpc_code(&result), code);
        assert_eq!(mock.count(), expected, "attempts for {code:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn resource_exhausted_is_retried_only_with_pushback_and_waits_for_it() {
    let mock = Scripted::new(|n| {
        if n == 1 {
            Reply::GrpcPushback(Code::ResourceExhausted, "40")
        } else {
            Reply::Ok
        }
    });
    let mut retry = Retry::new(mock.clone(), quick());
    let result = send(&mut retry, grpc(UNARY)).await;
    assert_eq!(grpc_code(&result), Code::Ok);
    let attempts = mock.attempts();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[1].at - attempts[0].at, Duration::from_millis(40));

    // A pushback that is not a number of milliseconds means "do not retry".
    let mock = Scripted::new(|_| Reply::GrpcPushback(Code::Unavailable, "-1"));
    let mut retry = Retry::new(mock.clone(), quick());
    send(&mut retry, grpc(UNARY)).await.unwrap();
    assert_eq!(mock.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn no_retry_starts_at_or_after_the_deadline() {
    // The server asks for 50 ms between attempts; the call has 150 ms.
    // Attempts at 0, 50 and 100 ms; one at 150 ms would be at the
    // deadline, so it is not made.
    let mock = Scripted::new(|_| Reply::GrpcPushback(Code::Unavailable, "50"));
    let mut retry = Retry::new(mock.clone(), quick().max_attempts(10));
    let start = Instant::now();
    let result = send(&mut retry, grpc_with_timeout(UNARY, "150m")).await;
    assert_eq!(grpc_code(&result), Code::Unavailable);
    let attempts = mock.attempts();
    let offsets: Vec<_> = attempts.iter().map(|a| a.at - start).collect();
    assert_eq!(
        offsets,
        [0, 50, 100].map(Duration::from_millis),
        "attempt times"
    );
    let budgets: Vec<_> = attempts.iter().map(|a| a.grpc_timeout.unwrap()).collect();
    assert_eq!(
        budgets,
        [150, 100, 50].map(Duration::from_millis),
        "each attempt carries what is left"
    );
    assert!(Instant::now() - start < Duration::from_millis(150));

    // A pushback longer than the time left: no retry at all.
    let mock = Scripted::new(|_| Reply::GrpcPushback(Code::Unavailable, "200"));
    let mut retry = Retry::new(mock.clone(), quick().max_attempts(10));
    send(&mut retry, grpc_with_timeout(UNARY, "150m"))
        .await
        .unwrap();
    assert_eq!(mock.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn slow_attempts_never_outlive_the_deadline_and_budgets_shrink() {
    // Every attempt fails after 30 ms; jittered backoff up to 20 ms; the
    // call has 200 ms. However the jitter falls, no attempt starts at or
    // after the deadline, each carries exactly what is left, and the call
    // ends by the deadline.
    for _ in 0..20 {
        let mock =
            Scripted::new(|_| Reply::Grpc(Code::Unavailable)).latency(Duration::from_millis(30));
        let policy = quick().max_attempts(10).backoff(Backoff::new(
            Duration::from_millis(20),
            Duration::from_millis(20),
        ));
        let mut retry = Retry::new(mock.clone(), policy);
        let start = Instant::now();
        let deadline = start + Duration::from_millis(200);
        let result = send(&mut retry, grpc_with_timeout(UNARY, "200m")).await;
        // The last attempt failed, or was cut off by the deadline.
        assert!(
            matches!(
                grpc_code(&result),
                Code::Unavailable | Code::DeadlineExceeded
            ),
            "{:?}",
            grpc_code(&result)
        );
        assert!(
            Instant::now() <= deadline,
            "the call ended after its deadline"
        );
        let attempts = mock.attempts();
        assert!(attempts.len() >= 2, "{} attempts", attempts.len());
        let mut previous = Duration::MAX;
        for attempt in &attempts {
            assert!(attempt.at < deadline, "an attempt started at the deadline");
            let budget = attempt
                .grpc_timeout
                .expect("every attempt carries a budget");
            let left = deadline - attempt.at;
            assert!(
                budget <= left && left - budget < Duration::from_millis(1),
                "sent {budget:?} with {left:?} left"
            );
            assert!(budget < previous, "budgets shrink across attempts");
            previous = budget;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn the_current_calls_deadline_bounds_the_retries() {
    let mock = Scripted::new(|_| Reply::GrpcPushback(Code::Unavailable, "40"));
    let mut retry = Retry::new(mock.clone(), quick().max_attempts(10));
    let ctx = CallContext::new(
        Some(Deadline::after(Duration::from_millis(100))),
        TraceContext::new_root(),
    );
    let start = Instant::now();
    ctx.scope(async {
        send(&mut retry, grpc(UNARY)).await.unwrap();
    })
    .await;
    let budgets: Vec<_> = mock
        .attempts()
        .iter()
        .map(|a| (a.at - start, a.grpc_timeout.unwrap()))
        .collect();
    assert_eq!(
        budgets,
        [(0, 100), (40, 60), (80, 20)]
            .map(|(at, left)| (Duration::from_millis(at), Duration::from_millis(left)))
    );
}

#[tokio::test(start_paused = true)]
async fn http_calls_carry_the_remaining_budget_in_plexus_timeout_ms() {
    let mock = Scripted::new(|n| {
        if n == 1 {
            Reply::Http(StatusCode::SERVICE_UNAVAILABLE)
        } else {
            Reply::Ok
        }
    })
    .latency(Duration::from_millis(25));
    let mut retry = Retry::new(
        mock.clone(),
        quick().backoff(Backoff::new(Duration::ZERO, Duration::ZERO)),
    );
    let mut request = http(Method::GET, "/v1/orders/1");
    request
        .headers_mut()
        .insert("plexus-timeout-ms", "300".parse().unwrap());
    send(&mut retry, request).await.unwrap();
    let budgets: Vec<_> = mock
        .attempts()
        .iter()
        .map(|a| a.timeout_ms.unwrap())
        .collect();
    assert_eq!(budgets, [300, 275]);
}

#[tokio::test(start_paused = true)]
async fn deadline_exceeded_is_retried_only_while_a_whole_attempt_fits() {
    // Attempts get 50 ms each and hang; the call has 180 ms. After the
    // third attempt (ending near 150 ms) another 50 ms no longer fits.
    let mock = Scripted::new(|_| Reply::Hang);
    let policy = quick()
        .max_attempts(10)
        .per_attempt_timeout(Duration::from_millis(50));
    let mut retry = Retry::new(mock.clone(), policy);
    let start = Instant::now();
    let result = send(&mut retry, grpc_with_timeout(UNARY, "180m")).await;
    assert_eq!(grpc_code(&result), Code::DeadlineExceeded);
    let attempts = mock.attempts();
    assert_eq!(attempts.len(), 3);
    for attempt in &attempts {
        assert_eq!(attempt.grpc_timeout, Some(Duration::from_millis(50)));
    }
    assert!(Instant::now() - start < Duration::from_millis(180));

    // Without a per-attempt timeout the attempt's deadline is the call's:
    // when it passes, there is no room left.
    let mock = Scripted::new(|_| Reply::Hang);
    let mut retry = Retry::new(mock.clone(), quick().max_attempts(10));
    let result = send(&mut retry, grpc_with_timeout(UNARY, "100m")).await;
    assert_eq!(grpc_code(&result), Code::DeadlineExceeded);
    assert_eq!(mock.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_expired_call_is_not_sent() {
    let mock = Scripted::new(|_| Reply::Ok);
    let mut retry = Retry::new(mock.clone(), quick());
    let result = send(&mut retry, grpc_with_timeout(UNARY, "0n")).await;
    assert_eq!(grpc_code(&result), Code::DeadlineExceeded);
    assert_eq!(mock.count(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_body_over_the_replay_bound_is_sent_once_intact() {
    let mock = Scripted::new(|_| Reply::Grpc(Code::Unavailable));
    let mut retry = Retry::new(mock.clone(), quick().max_replay_bytes(4));
    send(&mut retry, grpc(UNARY)).await.unwrap();
    let attempts = mock.attempts();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].body.as_ref(), b"grpc-payload");
}

#[tokio::test(start_paused = true)]
async fn under_a_total_outage_retries_stay_within_the_budget() {
    // Budget: 20 % of calls, plus 1 retry per second over a 10 s window.
    // 500 calls, one every 10 ms (5 s), each allowed 10 attempts, all
    // failing: without a budget that is 5,000 attempts.
    let mock = Scripted::new(|_| Reply::Grpc(Code::Unavailable));
    let policy = quick()
        .max_attempts(10)
        .budget(TpsBudget::new(Duration::from_secs(10), 1, 0.2));
    let mut retry = Retry::new(mock.clone(), policy);
    let calls = 500;
    for _ in 0..calls {
        let result = send(&mut retry, grpc(UNARY)).await;
        assert_eq!(grpc_code(&result), Code::Unavailable);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let retries = mock.count() - calls;
    // 20 % of 500 plus the floor of 10 (1/s over the 10 s window).
    let allowed = calls / 5 + 10;
    assert!(retries <= allowed, "{retries} retries, budget {allowed}");
    assert!(
        retries >= allowed * 9 / 10,
        "{retries} retries: the budget should be nearly used"
    );
}

#[test]
fn backoff_grows_exponentially_to_its_cap_with_full_jitter() {
    let backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(500));
    let caps: Vec<_> = (1..=8).map(|n| backoff.cap(n).as_millis()).collect();
    assert_eq!(caps, [10, 20, 40, 80, 160, 320, 500, 500]);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for retry in 1..=8 {
        let cap = backoff.cap(retry);
        let delays: Vec<_> = (0..1000)
            .map(|_| backoff.delay_with(retry, &mut rng))
            .collect();
        assert!(delays.iter().all(|d| *d <= cap), "a delay above {cap:?}");
        let mean = delays.iter().sum::<Duration>() / 1000;
        assert!(
            mean > cap * 2 / 5 && mean < cap * 3 / 5,
            "mean {mean:?} for cap {cap:?}: full jitter averages half the cap"
        );
        let low = delays.iter().filter(|d| **d < cap / 4).count();
        assert!(low > 150, "only {low} of 1000 delays in the lowest quarter");
    }
}

#[tokio::test(start_paused = true)]
async fn waits_between_attempts_stay_under_the_growing_cap() {
    let mock = Scripted::new(|_| Reply::Grpc(Code::Unavailable));
    let backoff = Backoff::new(Duration::from_millis(10), Duration::from_secs(1));
    let policy = quick().max_attempts(8).backoff(backoff);
    let mut retry = Retry::new(mock.clone(), policy);
    let mut waits = Vec::new();
    for _ in 0..20 {
        let before = mock.count();
        send(&mut retry, grpc(UNARY)).await.unwrap();
        let attempts = mock.attempts();
        let attempts = &attempts[before..];
        assert_eq!(attempts.len(), 8);
        for (n, pair) in attempts.windows(2).enumerate() {
            let wait = pair[1].at - pair[0].at;
            // Timers fire on whole milliseconds.
            assert!(
                wait <= backoff.cap(n as u32 + 1) + Duration::from_millis(1),
                "retry {}: waited {wait:?}",
                n + 1
            );
            waits.push((n, wait));
        }
    }
    let distinct: std::collections::HashSet<_> = waits.iter().map(|(_, w)| *w).collect();
    assert!(
        distinct.len() > 40,
        "waits are jittered: {} distinct",
        distinct.len()
    );
    let last_mean = waits
        .iter()
        .filter(|(n, _)| *n == 6)
        .map(|(_, w)| *w)
        .sum::<Duration>()
        / 20;
    let first_mean = waits
        .iter()
        .filter(|(n, _)| *n == 0)
        .map(|(_, w)| *w)
        .sum::<Duration>()
        / 20;
    assert!(
        last_mean > first_mean * 8,
        "waits grow: {first_mean:?} then {last_mean:?}"
    );
}

/// Fails the first `n` calls with `UNAVAILABLE`, then echoes.
#[derive(Clone)]
struct FailFirst {
    n: usize,
    calls: Arc<AtomicUsize>,
}

#[tonic::async_trait]
impl Unary for FailFirst {
    async fn unary(
        &self,
        request: tonic::Request<EchoRequest>,
    ) -> Result<tonic::Response<EchoReply>, Status> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if call <= self.n {
            return Err(Status::unavailable(format!("call {call}: warming up")));
        }
        Ok(tonic::Response::new(EchoReply {
            payload: request.into_inner().payload,
            sequence: call as u64,
        }))
    }
}

async fn flaky_server(n: usize) -> (plexus_rpc::server::ServerHandle, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let server = support::start(UnaryEcho(FailFirst {
        n,
        calls: Arc::clone(&calls),
    }))
    .await;
    (server, calls)
}

#[tokio::test]
async fn over_grpc_an_idempotent_call_succeeds_through_the_retry_layer() {
    let (server, calls) = flaky_server(2).await;
    let channel = ClientBuilder::new(server.url()).connect().await.unwrap();
    let mut echo = EchoClient::new(Retry::new(channel, quick()));
    let mut request = tonic::Request::new(EchoRequest {
        payload: "again".into(),
    });
    request.set_timeout(support::PROMPT);
    let reply = echo.unary(request).await.unwrap().into_inner();
    assert_eq!(reply.payload.as_ref(), b"again");
    assert_eq!(reply.sequence, 3);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn over_grpc_a_method_declared_idempotent_in_its_proto_is_retried() {
    use prost::Message;
    use prost_reflect::DescriptorPool;
    use prost_types::method_options::IdempotencyLevel;
    use prost_types::{FileDescriptorSet, MethodOptions};

    let mut files = FileDescriptorSet::decode(plexus_rpc::echo::FILE_DESCRIPTOR_SET).unwrap();
    let method = files
        .file
        .iter_mut()
        .flat_map(|f| f.service.iter_mut())
        .filter(|s| s.name() == "Echo")
        .flat_map(|s| s.method.iter_mut())
        .find(|m| m.name() == "Unary")
        .unwrap();
    method.options = Some(MethodOptions {
        idempotency_level: Some(IdempotencyLevel::NoSideEffects as i32),
        ..MethodOptions::default()
    });
    let pool = DescriptorPool::from_file_descriptor_set(files).unwrap();
    let idempotency = Idempotency::new().descriptors(&pool);
    assert!(idempotency.is_grpc_idempotent(UNARY));
    assert!(!idempotency.is_grpc_idempotent("/plexus.echo.v1.Echo/ServerStream"));

    let (server, calls) = flaky_server(1).await;
    let channel = ClientBuilder::new(server.url()).connect().await.unwrap();
    let mut echo = EchoClient::new(Retry::new(channel, quick().idempotency(idempotency)));
    echo.unary(EchoRequest {
        payload: "x".into(),
    })
    .await
    .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn over_grpc_an_undeclared_method_fails_after_one_call() {
    let (server, calls) = flaky_server(2).await;
    let channel = ClientBuilder::new(server.url()).connect().await.unwrap();
    let policy = quick().idempotency(Idempotency::new());
    let mut echo = EchoClient::new(Retry::new(channel, policy));
    let status = echo
        .unary(EchoRequest {
            payload: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}
