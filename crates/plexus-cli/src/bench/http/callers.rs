//! The call a worker repeats, over HTTP/1.1 or gRPC, and the connections
//! each measurement opens.
//!
//! HTTP: hyper-util's client (the legacy pooled client) over HTTP/1.1
//! keep-alive, **one client, hence one connection, per worker**: with one
//! call in flight per worker, a shared pool would open as many connections
//! anyway; a client per worker makes that explicit and keeps each worker on
//! its connection. gRPC: one plexus client channel (one HTTP/2 connection)
//! per measurement, shared by its workers, as in `plexus bench rpc`.
//!
//! Each call does a client's whole share of the work: the HTTP caller
//! writes the JSON request from its JSON twin and reads the JSON reply; the
//! gRPC caller hands tonic a copy of the request message to encode and gets
//! the decoded reply. Every reply's total is checked.

use anyhow::Context as _;
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::json::{QuoteReplyJson, QuoteRequestJson};
use super::quote::{QuoteRequest, QuotesClient};
use super::wire::{CountingConnector, WireCounter};
use crate::bench::load::Caller;

/// An HTTP/1.1 client with one keep-alive connection.
pub type HttpClient = Client<CountingConnector, Full<Bytes>>;

/// A client whose connection adds to `wire`; it connects on its first call.
pub fn http_client(wire: &WireCounter) -> HttpClient {
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(1)
        .build(CountingConnector::new(wire.clone()))
}

/// What an HTTP caller posts and expects: a quote, the request written
/// from its JSON twin on every call, the JSON reply read and its total
/// checked.
#[derive(Debug, Clone)]
pub struct HttpCall {
    /// The request.
    pub request: QuoteRequestJson,
    /// The total the reply must carry.
    pub total_cents: i64,
}

/// One worker's HTTP call.
pub struct HttpCaller {
    client: HttpClient,
    uri: Uri,
    call: HttpCall,
}

impl HttpCaller {
    /// A caller posting `call` to `uri` through `client`.
    pub fn new(client: HttpClient, uri: Uri, call: HttpCall) -> Self {
        HttpCaller { client, uri, call }
    }

    async fn post(&self, body: Bytes) -> anyhow::Result<Bytes> {
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.uri.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(Full::new(body))
            .context("cannot build the HTTP request")?;
        let response = self
            .client
            .request(request)
            .await
            .with_context(|| format!("POST {} failed", self.uri))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .with_context(|| format!("cannot read the reply of POST {}", self.uri))?
            .to_bytes();
        anyhow::ensure!(
            status == StatusCode::OK,
            "POST {} answered {status}: {}",
            self.uri,
            String::from_utf8_lossy(&body)
        );
        Ok(body)
    }
}

impl Caller for HttpCaller {
    async fn call(&mut self) -> anyhow::Result<u64> {
        let HttpCall {
            request,
            total_cents,
        } = &self.call;
        let body = serde_json::to_vec(request).context("cannot write the request")?;
        let reply = self.post(Bytes::from(body)).await?;
        let reply: QuoteReplyJson = serde_json::from_slice(&reply)
            .with_context(|| format!("POST {} answered invalid JSON", self.uri))?;
        anyhow::ensure!(
            reply.total_cents() == *total_cents,
            "POST {} priced {} cents, expected {total_cents}",
            self.uri,
            reply.total_cents()
        );
        Ok(1)
    }
}

/// One worker's gRPC call.
pub struct GrpcCaller {
    client: QuotesClient<plexus_rpc::client::Channel>,
    request: QuoteRequest,
    total_cents: i64,
}

impl GrpcCaller {
    /// A caller sending `request` on `channel` (sharing its connection).
    pub fn new(
        channel: &plexus_rpc::client::Channel,
        request: QuoteRequest,
        total_cents: i64,
    ) -> Self {
        GrpcCaller {
            client: QuotesClient::new(channel.clone()),
            request,
            total_cents,
        }
    }
}

impl Caller for GrpcCaller {
    async fn call(&mut self) -> anyhow::Result<u64> {
        let reply = self.client.quote(self.request.clone()).await?.into_inner();
        anyhow::ensure!(
            reply.total_cents == self.total_cents,
            "Quotes/Quote priced {} cents, expected {}",
            reply.total_cents,
            self.total_cents
        );
        Ok(1)
    }
}

/// A caller of either kind, so that one measurement runs one type.
pub enum AnyCaller {
    /// Over HTTP/1.1.
    Http(HttpCaller),
    /// Over gRPC.
    Grpc(GrpcCaller),
}

impl Caller for AnyCaller {
    async fn call(&mut self) -> anyhow::Result<u64> {
        match self {
            AnyCaller::Http(caller) => caller.call().await,
            AnyCaller::Grpc(caller) => caller.call().await,
        }
    }
}
