//! `plexus call` on a REST route of a gateway: `plexus call
//! http://host:port/v1/orders/ord-1` sends an HTTP request with the JSON of
//! `-d` and prints the JSON answer; a streaming answer (Server-Sent Events or
//! newline-delimited JSON) is printed one message per line as it arrives.

use std::io::Write;
use std::sync::Arc;

use futures::StreamExt;
use http::{HeaderName, HeaderValue, Method};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::time::Instant;

use super::args::{Args, Input};
use super::error::Failure;

/// The longest line of a streamed answer accepted before giving up.
const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;
/// The largest request body read from `-d`.
const MAX_BODY_BYTES: u64 = 64 * 1024 * 1024;

/// Whether `addr` names a REST route (an http(s) URL with a path) rather
/// than a gRPC server.
pub fn is_route(addr: &str) -> bool {
    let rest = addr
        .strip_prefix("http://")
        .or_else(|| addr.strip_prefix("https://"));
    rest.and_then(|r| r.split_once('/'))
        .is_some_and(|(_, path)| !path.is_empty())
}

/// Calls the route `args.addr`.
pub async fn call(args: &Args, deadline: Option<Instant>) -> Result<(), Failure> {
    if let Some(target) = &args.target {
        return Err(Failure::usage(format!(
            "`{target}`: a REST route takes no method name; the URL path is the route"
        )));
    }
    if args.list {
        return Err(Failure::usage(
            "--list needs a gRPC server address (host:port); a gateway describes its routes at /openapi.json",
        ));
    }
    let body = read_body(&Input::from_arg(args.data.as_deref()))?;
    let method = match (&args.method, &body) {
        (Some(m), _) => Method::from_bytes(m.to_ascii_uppercase().as_bytes())
            .map_err(|_| Failure::usage(format!("`{m}` is not an HTTP method")))?,
        (None, Some(_)) => Method::POST,
        (None, None) => Method::GET,
    };
    let client = client(args)?;
    let mut request = client
        .request(method, &args.addr)
        .header(http::header::ACCEPT, "application/json, text/event-stream");
    if let Some(body) = body {
        request = request
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body);
    }
    if let Some(token) = &args.connection.token {
        request = request.bearer_auth(token);
    }
    for header in &args.connection.headers {
        let (name, value) = parse_header(header)?;
        request = request.header(name, value);
    }
    if let Some(deadline) = deadline {
        let remaining = deadline.saturating_duration_since(Instant::now());
        request = request
            .header(
                plexus_core::deadline::TIMEOUT_HEADER,
                remaining.as_millis().to_string(),
            )
            .timeout(remaining);
    }
    let response = request
        .send()
        .await
        .map_err(|e| transport(&args.addr, &e))?;
    let status = response.status();
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        return Err(http_failure(status.as_u16(), &text));
    }
    let mut lines = Lines::new(response);
    if content_type.starts_with("text/event-stream") {
        let mut event = String::new();
        while let Some(line) = lines.next(&args.addr).await? {
            if let Some(name) = line.strip_prefix("event:") {
                event = name.trim().to_owned();
            } else if let Some(data) = line.strip_prefix("data:") {
                let data = data.strip_prefix(' ').unwrap_or(data);
                if event == "error" {
                    return Err(http_failure(status.as_u16(), data));
                }
                print_line(data)?;
            } else if line.is_empty() {
                event.clear();
            }
        }
    } else {
        while let Some(line) = lines.next(&args.addr).await? {
            if !line.trim().is_empty() {
                print_line(&line)?;
            }
        }
    }
    Ok(())
}

fn read_body(input: &Input) -> Result<Option<Vec<u8>>, Failure> {
    use std::io::Read;
    let mut body = Vec::new();
    let read = |reader: &mut dyn Read, body: &mut Vec<u8>, what: &str| {
        reader
            .take(MAX_BODY_BYTES + 1)
            .read_to_end(body)
            .map_err(|e| Failure::usage(format!("cannot read {what}: {e}")))?;
        if body.len() as u64 > MAX_BODY_BYTES {
            return Err(Failure::usage(format!(
                "{what} is larger than {MAX_BODY_BYTES} bytes"
            )));
        }
        Ok(())
    };
    match input {
        Input::Absent => return Ok(None),
        Input::Inline(json) => body.extend_from_slice(json.as_bytes()),
        Input::File(path) => {
            let mut file = std::fs::File::open(path).map_err(|e| {
                Failure::usage(format!(
                    "cannot read the request file {}: {e}",
                    path.display()
                ))
            })?;
            read(&mut file, &mut body, &format!("{}", path.display()))?;
        }
        Input::Stdin => read(&mut std::io::stdin(), &mut body, "standard input")?,
    }
    Ok(Some(body))
}

fn client(args: &Args) -> Result<reqwest::Client, Failure> {
    // reqwest builds its TLS setup even for plain http; plexus uses ring.
    // An error only says a provider is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let builder =
        reqwest::Client::builder().user_agent(concat!("plexus-call/", env!("CARGO_PKG_VERSION")));
    let https = args.addr.starts_with("https://");
    let connection = &args.connection;
    if !https {
        return builder
            .build()
            .map_err(|e| Failure::unusable(format!("cannot build an HTTP client: {e}")));
    }
    let ca = connection.ca.as_ref().ok_or_else(|| {
        Failure::usage("an https:// route needs --ca FILE (the CA of the gateway's certificate)")
    })?;
    let ca_pem = std::fs::read(ca)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", ca.display())))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&ca_pem) {
        let cert = cert
            .map_err(|e| Failure::usage(format!("{}: not a PEM certificate: {e}", ca.display())))?;
        roots.add(cert).map_err(|e| {
            Failure::usage(format!("{}: unusable CA certificate: {e}", ca.display()))
        })?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Failure::unusable(e.to_string()))?
        .with_root_certificates(roots);
    let config = match (&connection.cert, &connection.key) {
        (Some(cert), Some(key)) => {
            let cert_pem = std::fs::read(cert)
                .map_err(|e| Failure::usage(format!("cannot read {}: {e}", cert.display())))?;
            let key_pem = std::fs::read(key)
                .map_err(|e| Failure::usage(format!("cannot read {}: {e}", key.display())))?;
            let chain = CertificateDer::pem_slice_iter(&cert_pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    Failure::usage(format!("{}: not a PEM certificate: {e}", cert.display()))
                })?;
            let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
                Failure::usage(format!("{}: not a PEM private key: {e}", key.display()))
            })?;
            config.with_client_auth_cert(chain, key).map_err(|e| {
                Failure::usage(format!("client certificate and key do not match: {e}"))
            })?
        }
        _ => config.with_no_client_auth(),
    };
    builder
        .tls_backend_preconfigured(config)
        .build()
        .map_err(|e| Failure::unusable(format!("cannot build an HTTPS client: {e}")))
}

fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue), Failure> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| Failure::usage(format!("header `{text}` must be `name: value`")))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| Failure::usage(format!("`{}` is not a valid header name", name.trim())))?;
    let value = HeaderValue::from_str(value.trim()).map_err(|_| {
        Failure::usage(format!("the value of `{name}` is not a valid header value"))
    })?;
    Ok((name, value))
}

fn transport(addr: &str, error: &reqwest::Error) -> Failure {
    let mut message = format!("cannot call {addr}: {error}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    if error.is_timeout() {
        return Failure::Status(tonic::Status::deadline_exceeded(message));
    }
    Failure::unusable(message)
}

/// A failed HTTP answer: the gateway's JSON error body when there is one.
fn http_failure(status: u16, body: &str) -> Failure {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    Failure::Http {
        status,
        code: field("code"),
        message: field("message").unwrap_or_else(|| body.trim().to_owned()),
    }
}

fn print_line(line: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Failure::OutputClosed),
        Err(e) => Err(Failure::unusable(format!(
            "cannot write to standard output: {e}"
        ))),
    }
}

/// The lines of a response body, as they arrive.
struct Lines {
    chunks: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: Vec<u8>,
    done: bool,
}

impl Lines {
    fn new(response: reqwest::Response) -> Self {
        Lines {
            chunks: response.bytes_stream().boxed(),
            buffer: Vec::new(),
            done: false,
        }
    }

    async fn next(&mut self, addr: &str) -> Result<Option<String>, Failure> {
        loop {
            if let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buffer.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
            }
            if self.done {
                if self.buffer.is_empty() {
                    return Ok(None);
                }
                let rest = std::mem::take(&mut self.buffer);
                return Ok(Some(String::from_utf8_lossy(&rest).into_owned()));
            }
            if self.buffer.len() > MAX_LINE_BYTES {
                return Err(Failure::unusable(format!(
                    "{addr} sent a line longer than {MAX_LINE_BYTES} bytes"
                )));
            }
            match self.chunks.next().await {
                Some(Ok(chunk)) => self.buffer.extend_from_slice(&chunk),
                Some(Err(e)) => return Err(transport(addr, &e)),
                None => self.done = true,
            }
        }
    }
}
