//! Circuit breaker: opens at the failure-rate threshold, rejects fast
//! while open, half-opens after the cool-down, closes on successful probes
//! and re-opens on a failed one. Virtual time, scripted mock services.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use plexus_rpc::breaker::{
    BreakerConfig, CircuitBreaker, CircuitBreakerLayer, CircuitOpen, CircuitState, Window,
};
use plexus_rpc::retry::{Backoff, Idempotency, Retry, RetryPolicy};
use tokio::time::Instant;
use tonic::body::Body;
use tonic::{Code, Status};
use tower::{Layer, Service, ServiceExt};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Answers gRPC calls `UNAVAILABLE` (HTTP calls 503) while `failing` is
/// set, successfully otherwise, after `latency`.
#[derive(Clone, Default)]
struct Callee {
    failing: Arc<AtomicBool>,
    calls: Arc<AtomicUsize>,
    latency: Duration,
}

impl Callee {
    fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Service<Request<Body>> for Callee {
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let failing = self.failing.load(Ordering::SeqCst);
        let grpc = request.headers().contains_key("content-type");
        let latency = self.latency;
        Box::pin(async move {
            tokio::time::sleep(latency).await;
            Ok(match (failing, grpc) {
                (false, _) => Response::new(Body::empty()),
                (true, true) => Status::unavailable("down").into_http(),
                (true, false) => {
                    let mut response = Response::new(Body::empty());
                    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                    response
                }
            })
        })
    }
}

fn grpc() -> Request<Body> {
    Request::builder()
        .method(Method::POST)
        .uri("http://svc/plexus.echo.v1.Echo/Unary")
        .header("content-type", "application/grpc")
        .body(Body::empty())
        .unwrap()
}

fn http_get() -> Request<Body> {
    Request::builder()
        .uri("http://svc/v1/orders/1")
        .body(Body::empty())
        .unwrap()
}

/// Window of the last 10 calls, opens at 50 % with at least 10 calls,
/// cool-down 5 s, 2 probes.
fn config() -> BreakerConfig {
    BreakerConfig::new()
        .name("orders")
        .window(Window::Count(10))
        .minimum_calls(10)
        .failure_rate(0.5)
        .open_for(Duration::from_secs(5))
        .probes(2)
}

async fn call<S>(service: &mut S, request: Request<Body>) -> Result<Response<Body>, BoxError>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = BoxError>,
{
    service.ready().await?.call(request).await
}

fn code(result: &Result<Response<Body>, BoxError>) -> Code {
    match result {
        Ok(response) => Status::from_header_map(response.headers()).map_or(Code::Ok, |s| s.code()),
        Err(error) => error
            .downcast_ref::<Status>()
            .map_or(Code::Unknown, Status::code),
    }
}

/// Sends `successes` good calls, then `failures` failing ones.
async fn drive(
    breaker: &mut CircuitBreaker<Callee>,
    callee: &Callee,
    successes: usize,
    failures: usize,
) {
    callee.fail(false);
    for _ in 0..successes {
        assert_eq!(code(&call(breaker, grpc()).await), Code::Ok);
    }
    callee.fail(true);
    for _ in 0..failures {
        assert_eq!(code(&call(breaker, grpc()).await), Code::Unavailable);
    }
}

#[tokio::test(start_paused = true)]
async fn stays_closed_below_the_threshold_and_below_the_minimum_calls() {
    let callee = Callee::default();
    let mut breaker = CircuitBreaker::new(callee.clone(), config());
    // 9 calls, all failed: fewer than the minimum of 10.
    drive(&mut breaker, &callee, 0, 9).await;
    assert_eq!(breaker.circuit().state(), CircuitState::Closed);

    let mut breaker = CircuitBreaker::new(callee.clone(), config());
    // 10 calls, 4 failed: 40 % < 50 %.
    drive(&mut breaker, &callee, 6, 4).await;
    let stats = breaker.circuit().stats();
    assert_eq!(stats.state, CircuitState::Closed);
    assert_eq!((stats.calls, stats.failures), (10, 4));
}

#[tokio::test(start_paused = true)]
async fn opens_at_the_threshold_and_rejects_fast_while_open() {
    let callee = Callee::default();
    let mut breaker = CircuitBreaker::new(callee.clone(), config());
    drive(&mut breaker, &callee, 5, 4).await;
    assert_eq!(breaker.circuit().state(), CircuitState::Closed);
    let opened_at = Instant::now();
    drive(&mut breaker, &callee, 0, 1).await;
    assert_eq!(
        breaker.circuit().state(),
        CircuitState::Open {
            until: opened_at + Duration::from_secs(5)
        },
        "5 of 10 failed: at the 50 % threshold"
    );
    assert_eq!(breaker.circuit().stats().opened, 1);

    // While open: rejected at once, never sent, for gRPC and HTTP alike.
    let sent = callee.calls();
    callee.fail(false);
    tokio::time::advance(Duration::from_secs(2)).await;
    let error = call(&mut breaker, grpc()).await.unwrap_err();
    let status = error.downcast_ref::<Status>().expect("a gRPC status");
    assert_eq!(status.code(), Code::Unavailable);
    assert!(CircuitOpen::is_rejection(status));
    let message = status.message();
    assert!(message.contains("circuit open for orders"), "{message}");
    assert!(
        message.contains("5 of the last 10 calls failed"),
        "{message}"
    );
    assert!(message.contains("cool-down ends in 3.000 s"), "{message}");

    let error = call(&mut breaker, http_get()).await.unwrap_err();
    let open = error.downcast_ref::<CircuitOpen>().expect("a CircuitOpen");
    assert_eq!(open.http_status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(open.retry_after(), Duration::from_secs(3));
    assert_eq!(open.until(), Some(opened_at + Duration::from_secs(5)));

    assert_eq!(
        callee.calls(),
        sent,
        "no call reached the callee while open"
    );
    assert_eq!(breaker.circuit().stats().rejected, 2);
}

#[tokio::test(start_paused = true)]
async fn half_opens_after_the_cool_down_and_closes_on_successful_probes() {
    let callee = Callee {
        latency: Duration::from_millis(100),
        ..Callee::default()
    };
    let layer = CircuitBreakerLayer::new(config());
    let circuit = layer.circuit();
    let mut breaker = layer.layer(callee.clone());
    callee.fail(true);
    for _ in 0..10 {
        call(&mut breaker, grpc()).await.unwrap();
    }
    assert!(matches!(circuit.state(), CircuitState::Open { .. }));

    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(circuit.state(), CircuitState::HalfOpen);
    callee.fail(false);
    let sent = callee.calls();
    // Two probes go through (and take 100 ms); a third call meanwhile is
    // rejected.
    let (mut a, mut b, mut c) = (breaker.clone(), breaker.clone(), breaker.clone());
    let probe1 = call(&mut a, grpc());
    let probe2 = call(&mut b, grpc());
    let third = async {
        tokio::time::sleep(Duration::from_millis(10)).await;
        call(&mut c, grpc()).await
    };
    let (r1, r2, r3) = tokio::join!(probe1, probe2, third);
    assert_eq!(code(&r1), Code::Ok);
    assert_eq!(code(&r2), Code::Ok);
    let rejection = r3.unwrap_err();
    assert!(
        rejection
            .to_string()
            .contains("circuit half-open for orders"),
        "{rejection}"
    );
    assert_eq!(callee.calls(), sent + 2, "only the probes were sent");
    assert_eq!(circuit.state(), CircuitState::Closed);

    // Closed again, with an empty window: calls flow.
    drive(&mut breaker, &callee, 3, 0).await;
    assert_eq!(circuit.stats().calls, 3);
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_reopens_the_circuit_for_another_cool_down() {
    let callee = Callee::default();
    let mut breaker = CircuitBreaker::new(callee.clone(), config());
    drive(&mut breaker, &callee, 0, 10).await;
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(breaker.circuit().state(), CircuitState::HalfOpen);

    // Still failing: the first probe fails and the circuit opens again.
    let reopened_at = Instant::now();
    assert_eq!(code(&call(&mut breaker, grpc()).await), Code::Unavailable);
    assert_eq!(
        breaker.circuit().state(),
        CircuitState::Open {
            until: reopened_at + Duration::from_secs(5)
        }
    );
    assert_eq!(breaker.circuit().stats().opened, 2);
    let error = call(&mut breaker, grpc()).await.unwrap_err();
    assert!(error.to_string().contains("a probe call failed"), "{error}");

    // Recovered: after the next cool-down both probes pass and it closes.
    callee.fail(false);
    tokio::time::advance(Duration::from_secs(5)).await;
    drive(&mut breaker, &callee, 2, 0).await;
    assert_eq!(breaker.circuit().state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_probe_frees_its_slot() {
    let callee = Callee {
        latency: Duration::from_secs(60),
        ..Callee::default()
    };
    let mut breaker = CircuitBreaker::new(callee.clone(), config().probes(1));
    let fast = Callee::default();
    fast.fail(true);
    let mut tripper = CircuitBreaker::with_circuit(fast.clone(), breaker.circuit().clone());
    drive_any(&mut tripper, 10).await;
    tokio::time::advance(Duration::from_secs(5)).await;

    // The only probe hangs; the caller gives up on it.
    let probe = call(&mut breaker, grpc());
    assert!(
        tokio::time::timeout(Duration::from_millis(50), probe)
            .await
            .is_err()
    );
    // Its slot is free again: the next call is a probe, and it passes.
    fast.fail(false);
    assert_eq!(code(&call(&mut tripper, grpc()).await), Code::Ok);
    assert_eq!(breaker.circuit().state(), CircuitState::Closed);
}

async fn drive_any(breaker: &mut CircuitBreaker<Callee>, n: usize) {
    for _ in 0..n {
        let _ = call(breaker, grpc()).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_time_window_forgets_old_failures() {
    let callee = Callee::default();
    let config = config()
        .window(Window::Time(Duration::from_secs(10)))
        .minimum_calls(4);
    let mut breaker = CircuitBreaker::new(callee.clone(), config);
    drive(&mut breaker, &callee, 0, 3).await;
    tokio::time::advance(Duration::from_secs(11)).await;
    // The 3 failures have left the window: 3 successes and 1 failure now.
    drive(&mut breaker, &callee, 3, 1).await;
    let stats = breaker.circuit().stats();
    assert_eq!((stats.calls, stats.failures), (4, 1));
    assert_eq!(stats.state, CircuitState::Closed);
    // Within the window, failures add up.
    drive(&mut breaker, &callee, 0, 1).await;
    assert!(matches!(breaker.circuit().state(), CircuitState::Closed));
    drive(&mut breaker, &callee, 0, 1).await;
    assert!(matches!(
        breaker.circuit().state(),
        CircuitState::Open { .. }
    ));
}

#[tokio::test(start_paused = true)]
async fn client_errors_do_not_count_as_failures() {
    #[derive(Clone)]
    struct NotFound;
    impl Service<Request<Body>> for NotFound {
        type Response = Response<Body>;
        type Error = BoxError;
        type Future = std::future::Ready<Result<Response<Body>, BoxError>>;
        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, _request: Request<Body>) -> Self::Future {
            std::future::ready(Ok(Status::not_found("no such order").into_http()))
        }
    }
    let mut breaker = CircuitBreaker::new(NotFound, config());
    for _ in 0..20 {
        assert_eq!(code(&call(&mut breaker, grpc()).await), Code::NotFound);
    }
    let stats = breaker.circuit().stats();
    assert_eq!((stats.state, stats.failures), (CircuitState::Closed, 0));
}

#[tokio::test(start_paused = true)]
async fn retries_do_not_retry_an_open_circuits_rejections() {
    let callee = Callee::default();
    let layer = CircuitBreakerLayer::new(config());
    let circuit = layer.circuit();
    let policy = RetryPolicy::new()
        .max_attempts(5)
        .backoff(Backoff::new(
            Duration::from_millis(1),
            Duration::from_millis(1),
        ))
        .idempotency(Idempotency::new().grpc_method("/plexus.echo.v1.Echo/Unary"));
    let mut stack = Retry::new(layer.layer(callee.clone()), policy);
    callee.fail(true);
    // Each call is tried up to 5 times; the circuit opens on the 10th
    // failed attempt, in the second call.
    for _ in 0..2 {
        let _ = call(&mut stack, grpc()).await;
    }
    assert!(matches!(circuit.state(), CircuitState::Open { .. }));
    assert_eq!(callee.calls(), 10);
    let rejected = circuit.stats().rejected;
    let error = call(&mut stack, grpc()).await.unwrap_err();
    assert!(error.to_string().contains("circuit open"), "{error}");
    assert_eq!(
        circuit.stats().rejected,
        rejected + 1,
        "the rejection was not retried"
    );
}
