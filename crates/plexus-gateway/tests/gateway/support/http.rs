//! A small HTTP/1.1 client for the tests (hyper-util's client).

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value as Json;

use super::PROMPT;

/// An HTTP client of one gateway.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

/// A whole response.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> Json {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Panics unless the reply is a JSON error with this HTTP status and
    /// gRPC code name, whose message contains every one of `needles`.
    pub fn assert_error(&self, status: u16, code: &str, needles: &[&str]) -> Json {
        let body = self.json();
        assert_eq!(self.status.as_u16(), status, "status of {body}");
        assert_eq!(body["code"], code, "code of {body}");
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{body}"
        );
        assert!(body["details"].is_array(), "details of {body}");
        let message = body["message"].as_str().unwrap_or_default();
        for needle in needles {
            assert!(
                message.contains(needle),
                "`{needle}` not in message: {message}"
            );
        }
        body
    }
}

impl Http {
    /// A client of `base` (`http://host:port`).
    pub fn new(base: String) -> Self {
        Http {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base,
        }
    }

    /// Sends a request and reads the whole response, within the test bound.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        let response = self.open(method, path, headers, body).await;
        let (parts, body) = response.into_parts();
        let body = tokio::time::timeout(PROMPT, body.collect())
            .await
            .expect("response body within the test bound")
            .expect("read the response body")
            .to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// Sends a request and returns the response as soon as its head arrives.
    pub async fn open(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> http::Response<Incoming> {
        let mut request = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).expect("method"))
            .uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(Bytes::copy_from_slice(body)))
            .expect("request");
        tokio::time::timeout(PROMPT, self.client.request(request))
            .await
            .expect("response within the test bound")
            .expect("send the request")
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, &[], b"").await
    }

    /// `method path` with a JSON body.
    pub async fn json(&self, method: &str, path: &str, body: &str) -> Reply {
        self.send(
            method,
            path,
            &[("content-type", "application/json")],
            body.as_bytes(),
        )
        .await
    }
}
