//! [`ClientBuilder`]: endpoint, TLS, credentials and connection settings.

use std::time::Duration;

use http::HeaderValue;
use tonic::transport::Endpoint;
use tower_layer::Layer;

use super::{Channel, PropagateLayer};
use crate::error::Error;
use crate::tls::ClientTls;

/// Builds a [`Channel`] to one endpoint.
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `connect` is called"]
pub struct ClientBuilder {
    uri: String,
    tls: Option<ClientTls>,
    token: Option<String>,
    connect_timeout: Duration,
    keepalive: Option<(Duration, Duration)>,
}

impl ClientBuilder {
    /// A client of `uri` (`http://host:port`, or `https://…` with [`tls`](Self::tls)).
    pub fn new(uri: impl Into<String>) -> Self {
        ClientBuilder {
            uri: uri.into(),
            tls: None,
            token: None,
            connect_timeout: Duration::from_secs(5),
            keepalive: None,
        }
    }

    /// Connects over TLS (mutual TLS when `tls` has an identity).
    pub fn tls(mut self, tls: ClientTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Sends `authorization: Bearer <token>` on every call.
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Time allowed to establish the connection. Default 5 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Pings the server every `interval` while the connection is open and
    /// drops the connection when a ping is not answered within `timeout`,
    /// so a dead server or path is noticed without waiting for a call to
    /// fail. Off by default: the server already pings idle clients (see
    /// [`Limits`](crate::server::Limits)), and hyper's keepalive bookkeeping
    /// costs a lock per received frame.
    pub fn keepalive(mut self, interval: Duration, timeout: Duration) -> Self {
        self.keepalive = Some((interval, timeout));
        self
    }

    fn endpoint(&self) -> Result<(Endpoint, PropagateLayer), Error> {
        let invalid = |reason: String| Error::InvalidUri {
            uri: self.uri.clone(),
            reason,
        };
        let mut endpoint = Endpoint::from_shared(self.uri.clone())
            .map_err(|e| invalid(format!("{e}; expected e.g. http://127.0.0.1:50051")))?
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true);
        if let Some((interval, timeout)) = self.keepalive {
            endpoint = endpoint
                .http2_keep_alive_interval(interval)
                .keep_alive_timeout(timeout);
        }
        if let Some(tls) = &self.tls {
            if !self.uri.starts_with("https://") {
                return Err(invalid("TLS needs an https:// address".to_owned()));
            }
            endpoint = endpoint
                .tls_config(tls.to_tonic()?)
                .map_err(|e| Error::tls(e.to_string()))?;
        }
        let mut layer = PropagateLayer::new();
        if let Some(token) = &self.token {
            let value = HeaderValue::try_from(format!("Bearer {token}"))
                .map_err(|_| Error::tls("bearer token must be visible ASCII"))?;
            layer = layer.authorization(value);
        }
        Ok((endpoint, layer))
    }

    /// Connects now; fails if the endpoint cannot be reached.
    pub async fn connect(self) -> Result<Channel, Error> {
        let (endpoint, layer) = self.endpoint()?;
        let channel = endpoint.connect().await.map_err(|source| Error::Connect {
            uri: self.uri.clone(),
            source,
        })?;
        Ok(layer.layer(channel))
    }

    /// Returns at once; connects on the first call (and reconnects as needed).
    pub fn connect_lazy(self) -> Result<Channel, Error> {
        let (endpoint, layer) = self.endpoint()?;
        Ok(layer.layer(endpoint.connect_lazy()))
    }
}
