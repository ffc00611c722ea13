//! Load balancing: power-of-two-choices on PeakEwma latency keeps traffic
//! off a slow endpoint; an endpoint that fails its health check gets no
//! traffic until it recovers; bounds hold. Virtual time with mock
//! endpoints, then real loopback gRPC servers with `grpc.health.v1`.

mod support;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use http::{Method, Request, Response};
use plexus_rpc::balance::{Balance, BalanceError, HealthCheck, NoHealthyEndpoint};
use plexus_rpc::client::{ClientBuilder, PropagateLayer};
use plexus_rpc::echo::v1::EchoRequest;
use plexus_rpc::echo::v1::echo_client::EchoClient;
use support::counting::Counting;
use tonic::body::Body;
use tonic::{Code, Status};
use tower::buffer::Buffer;
use tower::{Layer, Service, ServiceExt};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A mock endpoint answering after `latency`, counting its calls in a map
/// shared by all endpoints of a test.
#[derive(Clone)]
struct Mock {
    name: &'static str,
    latency: Duration,
    counts: Arc<Mutex<HashMap<&'static str, usize>>>,
}

impl Service<Request<Body>> for Mock {
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _request: Request<Body>) -> Self::Future {
        *self.counts.lock().unwrap().entry(self.name).or_default() += 1;
        let latency = self.latency;
        Box::pin(async move {
            tokio::time::sleep(latency).await;
            Ok(Response::new(Body::empty()))
        })
    }
}

#[derive(Clone, Default)]
struct Counts(Arc<Mutex<HashMap<&'static str, usize>>>);

impl Counts {
    fn endpoint(&self, name: &'static str, latency_ms: u64) -> Mock {
        Mock {
            name,
            latency: Duration::from_millis(latency_ms),
            counts: Arc::clone(&self.0),
        }
    }

    fn get(&self, name: &str) -> usize {
        self.0.lock().unwrap().get(name).copied().unwrap_or(0)
    }

    fn total(&self) -> usize {
        self.0.lock().unwrap().values().sum()
    }

    fn reset(&self) {
        self.0.lock().unwrap().clear();
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

/// Sends `calls` calls through `service`, `concurrency` at a time; every
/// call must succeed.
async fn drive<S>(service: &mut S, calls: usize, concurrency: usize)
where
    S: Service<Request<Body>, Response = Response<Body>, Error = BoxError>,
{
    let mut in_flight = FuturesUnordered::new();
    let mut sent = 0;
    while sent < calls || !in_flight.is_empty() {
        while sent < calls && in_flight.len() < concurrency {
            service.ready().await.unwrap();
            in_flight.push(service.call(grpc()));
            sent += 1;
        }
        if let Some(result) = in_flight.next().await {
            result.unwrap();
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_ten_times_slower_endpoint_gets_under_a_fifth_of_the_traffic() {
    let counts = Counts::default();
    let mut balance = Balance::builder()
        .endpoint("fast-1", counts.endpoint("fast-1", 10), HealthCheck::none())
        .endpoint("fast-2", counts.endpoint("fast-2", 10), HealthCheck::none())
        .endpoint("slow", counts.endpoint("slow", 100), HealthCheck::none())
        .build::<Body>()
        .unwrap();
    drive(&mut balance, 3000, 8).await;
    let (slow, total) = (counts.get("slow"), counts.total());
    assert_eq!(total, 3000);
    assert!(
        slow * 5 < total,
        "slow endpoint got {slow} of {total} calls (fast: {} and {})",
        counts.get("fast-1"),
        counts.get("fast-2")
    );
    assert!(slow > 0, "a slow endpoint is still measured now and then");
    assert!(counts.get("fast-1") > total / 4 && counts.get("fast-2") > total / 4);
}

/// Waits (virtual time) until `condition` holds, for at most a minute.
async fn eventually(mut condition: impl FnMut() -> bool) {
    tokio::time::timeout(Duration::from_secs(60), async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("condition not reached within a minute of virtual time");
}

#[tokio::test(start_paused = true)]
async fn an_unhealthy_endpoint_gets_no_traffic_until_it_recovers() {
    let counts = Counts::default();
    let b_healthy = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&b_healthy);
    let check_b = HealthCheck::new(move || {
        let healthy = flag.load(Ordering::SeqCst);
        async move {
            if healthy {
                Ok(())
            } else {
                Err("b is draining".to_owned())
            }
        }
    });
    let mut balance = Balance::builder()
        .check_interval(Duration::from_secs(1))
        .endpoint("a", counts.endpoint("a", 5), HealthCheck::none())
        .endpoint("b", counts.endpoint("b", 5), check_b)
        .endpoint("c", counts.endpoint("c", 5), HealthCheck::none())
        .build::<Body>()
        .unwrap();
    let health = balance.health();
    eventually(|| health.is_healthy(&"b") == Some(false)).await;
    assert_eq!(health.healthy_count(), 2);
    let b = health
        .endpoints()
        .into_iter()
        .find(|e| e.key == "b")
        .unwrap();
    assert_eq!(b.last_error.as_deref(), Some("b is draining"));

    // Many check rounds pass while b stays unhealthy: it gets nothing.
    for _ in 0..5 {
        drive(&mut balance, 200, 4).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(counts.get("b"), 0);
    assert_eq!(counts.total(), 1000);

    b_healthy.store(true, Ordering::SeqCst);
    eventually(|| health.is_healthy(&"b") == Some(true)).await;
    counts.reset();
    drive(&mut balance, 900, 4).await;
    assert!(
        counts.get("b") > 150,
        "b is back and takes a share: {} of 900",
        counts.get("b")
    );
}

#[tokio::test(start_paused = true)]
async fn with_no_healthy_endpoint_calls_fail_at_once() {
    let counts = Counts::default();
    let down = || HealthCheck::new(|| async { Err("connection refused".to_owned()) });
    let mut balance = Balance::builder()
        .endpoint("a", counts.endpoint("a", 5), down())
        .endpoint("b", counts.endpoint("b", 5), down())
        .build::<Body>()
        .unwrap();
    let health = balance.health();
    eventually(|| health.healthy_count() == 0).await;

    let error = balance
        .ready()
        .await
        .unwrap()
        .call(grpc())
        .await
        .unwrap_err();
    let status = error.downcast_ref::<Status>().expect("a gRPC status");
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        status.message().contains("no healthy endpoint")
            && status.message().contains("connection refused"),
        "{}",
        status.message()
    );
    let http = Request::builder()
        .uri("http://svc/v1/orders")
        .body(Body::empty())
        .unwrap();
    let error = balance.ready().await.unwrap().call(http).await.unwrap_err();
    assert!(error.is::<NoHealthyEndpoint>(), "{error}");
    assert_eq!(counts.total(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_slow_health_check_counts_as_failed() {
    let counts = Counts::default();
    let stuck = HealthCheck::new(std::future::pending::<Result<(), String>>);
    let balance = Balance::builder()
        .check_timeout(Duration::from_millis(200))
        .endpoint("a", counts.endpoint("a", 5), stuck)
        .build::<Body>()
        .unwrap();
    let health = balance.health();
    eventually(|| health.healthy_count() == 0).await;
    let error = health.endpoints()[0].last_error.clone().unwrap();
    assert!(error.contains("no answer within 200ms"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn calls_in_flight_per_endpoint_are_bounded() {
    let counts = Counts::default();
    let mut balance = Balance::builder()
        .max_in_flight(2)
        .endpoint("a", counts.endpoint("a", 1000), HealthCheck::none())
        .endpoint("b", counts.endpoint("b", 1000), HealthCheck::none())
        .build::<Body>()
        .unwrap();
    let mut in_flight = FuturesUnordered::new();
    for _ in 0..4 {
        balance.ready().await.unwrap();
        in_flight.push(balance.call(grpc()));
    }
    assert_eq!((counts.get("a"), counts.get("b")), (2, 2));
    let waited = tokio::time::timeout(Duration::from_millis(500), balance.ready()).await;
    assert!(waited.is_err(), "a fifth call must wait for a free slot");
    in_flight.next().await.unwrap().unwrap();
    balance.ready().await.unwrap();
}

#[tokio::test]
async fn the_builder_refuses_bad_endpoint_lists() {
    let counts = Counts::default();
    let none = Balance::builder::<&str, Mock>().build::<Body>();
    assert_eq!(none.err(), Some(BalanceError::NoEndpoints));
    let mut builder = Balance::builder().max_endpoints(2);
    for name in ["a", "b", "c"] {
        builder = builder.endpoint(name, counts.endpoint(name, 1), HealthCheck::none());
    }
    assert_eq!(
        builder.build::<Body>().err(),
        Some(BalanceError::TooManyEndpoints { count: 3, max: 2 })
    );
    let twice = Balance::builder()
        .endpoint("a", counts.endpoint("a", 1), HealthCheck::none())
        .endpoint("a", counts.endpoint("a", 1), HealthCheck::none())
        .build::<Body>();
    assert!(matches!(twice.err(), Some(BalanceError::DuplicateKey(_))));
}

#[tokio::test]
async fn over_grpc_a_server_reporting_not_serving_is_ejected_then_restored() {
    let (a, b) = (Counting::new(), Counting::new());
    let server_a = support::start(a.clone()).await;
    let server_b = support::start(b.clone()).await;
    let mut builder = Balance::builder()
        .check_interval(Duration::from_millis(20))
        .check_timeout(Duration::from_secs(1));
    for server in [&server_a, &server_b] {
        let channel = ClientBuilder::new(server.url()).connect().await.unwrap();
        let check = HealthCheck::grpc(channel.clone(), "plexus.echo.v1.Echo");
        builder = builder.endpoint(server.url(), channel, check);
    }
    let balance = builder.build::<Body>().unwrap();
    let health = balance.health();
    let shared = Buffer::new(balance, 64);
    let mut echo = EchoClient::new(PropagateLayer::new().layer(shared));

    server_a
        .health()
        .set_service_status(
            "plexus.echo.v1.Echo",
            tonic_health::ServingStatus::NotServing,
        )
        .await;
    assert!(
        support::wait_until(support::PROMPT, || health.is_healthy(&server_a.url())
            == Some(false))
        .await,
        "a server reporting NOT_SERVING was not ejected"
    );
    let message = health.endpoints()[0].last_error.clone().unwrap();
    assert!(message.contains("NOT_SERVING"), "{message}");
    let before = a.calls();
    for _ in 0..20 {
        echo.unary(EchoRequest {
            payload: "x".into(),
        })
        .await
        .unwrap();
    }
    assert_eq!(a.calls(), before, "the ejected server got calls");
    assert_eq!(b.calls(), 20);

    server_a
        .health()
        .set_service_status("plexus.echo.v1.Echo", tonic_health::ServingStatus::Serving)
        .await;
    assert!(
        support::wait_until(support::PROMPT, || health.healthy_count() == 2).await,
        "the recovered server was not brought back"
    );
    let before = a.calls();
    for _ in 0..100 {
        echo.unary(EchoRequest {
            payload: "x".into(),
        })
        .await
        .unwrap();
    }
    // It starts at the fleet's latency: a fair share at once, not starved.
    let share = a.calls() - before;
    assert!(share >= 20, "the recovered server got {share} of 100 calls");
}
