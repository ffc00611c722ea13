//! [`HealthCheck`]: how the balancer asks an endpoint whether it is well.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tower_service::Service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// An async check of one endpoint: `Ok(())` when it is healthy, or why
/// not.
#[derive(Clone)]
pub struct HealthCheck {
    check: Arc<dyn Fn() -> CheckFuture + Send + Sync>,
}

impl fmt::Debug for HealthCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HealthCheck")
    }
}

impl HealthCheck {
    /// A check run by calling `check`.
    pub fn new<F, Fut>(check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        HealthCheck {
            check: Arc::new(move || Box::pin(check())),
        }
    }

    /// No check: the endpoint is always taken as healthy.
    pub fn none() -> Self {
        HealthCheck::new(|| async { Ok(()) })
    }

    /// The standard gRPC health check (`grpc.health.v1.Health/Check`) of
    /// `service` (`""` for the whole server) over `channel`: healthy when
    /// the answer is `SERVING`.
    pub fn grpc<T, R>(channel: T, service: impl Into<String>) -> Self
    where
        T: Service<http::Request<tonic::body::Body>, Response = http::Response<R>>
            + Clone
            + Send
            + Sync
            + 'static,
        T::Error: Into<BoxError>,
        T::Future: Send,
        R: http_body::Body<Data = Bytes> + Send + 'static,
        R::Error: Into<BoxError> + Send,
    {
        let service = service.into();
        HealthCheck::new(move || {
            let mut client = HealthClient::new(channel.clone());
            let request = HealthCheckRequest {
                service: service.clone(),
            };
            let name = service.clone();
            async move {
                let reply = client
                    .check(request)
                    .await
                    .map_err(|s| format!("health check of `{name}` failed: {s}"))?
                    .into_inner();
                match reply.status() {
                    ServingStatus::Serving => Ok(()),
                    other => Err(format!(
                        "health check of `{name}` says {}",
                        other.as_str_name()
                    )),
                }
            }
        })
    }

    pub(crate) fn run(&self) -> CheckFuture {
        (self.check)()
    }
}
