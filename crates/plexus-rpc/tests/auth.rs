//! TLS, mutual TLS and authorization: client identities reach handlers, a
//! per-method policy denies by default, bearer tokens are the alternative to
//! client certificates, and every refusal happens before the handler runs.

mod support;

use plexus_rpc::Server;
use plexus_rpc::auth::{Identity, Policy, StaticTokens};
use plexus_rpc::client::{Channel, ClientBuilder};
use plexus_rpc::echo::v1::echo_client::EchoClient;
use plexus_rpc::echo::v1::{EchoReply, EchoRequest, StreamRequest};
use plexus_rpc::server::ServerHandle;
use plexus_rpc::tls::{ClientTls, ServerTls};
use support::certs::{Ca, Leaf};
use support::counting::Counting;
use support::unary::Unary;
use tonic::{Code, Request, Response, Status};

const UNARY: &str = "/plexus.echo.v1.Echo/Unary";
const GATEWAY: &str = "spiffe://shop/gateway";
const CLI: &str = "spiffe://shop/cli";

/// Answers a unary call with the caller's principal. The tests serve it
/// inside [`Counting`], which counts the calls that reach a handler.
#[derive(Clone, Copy, Default)]
struct WhoAmI;

#[tonic::async_trait]
impl Unary for WhoAmI {
    async fn unary(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        let principal = request
            .extensions()
            .get::<Identity>()
            .map(|id| id.principal().to_owned())
            .unwrap_or_else(|| "anonymous".to_owned());
        Ok(Response::new(EchoReply {
            payload: principal.into(),
            sequence: 0,
        }))
    }
}

/// Unary: only the gateway. Server streaming: any authenticated caller.
/// Health: anyone. Everything else: denied by default.
fn policy() -> Policy {
    Policy::default_deny()
        .allow(UNARY, [GATEWAY])
        .allow_authenticated("/plexus.echo.v1.Echo/ServerStream")
        .allow_anyone("/grpc.health.v1.Health/*")
}

struct Pki {
    ca: Ca,
    server: Leaf,
}

impl Pki {
    fn new() -> Self {
        let ca = Ca::new("plexus test CA");
        let server = ca.server();
        Pki { ca, server }
    }

    fn server_tls(&self) -> ServerTls {
        ServerTls::from_pem(&self.server.cert_pem, &self.server.key_pem)
            .unwrap()
            .client_ca_pem(&self.ca.cert_pem)
            .unwrap()
    }

    fn client_tls(&self, identity: Option<&Leaf>) -> ClientTls {
        let tls = ClientTls::new()
            .ca_pem(&self.ca.cert_pem)
            .unwrap()
            .domain_name("localhost");
        match identity {
            Some(leaf) => tls.identity_pem(&leaf.cert_pem, &leaf.key_pem).unwrap(),
            None => tls,
        }
    }
}

async fn start_mtls(
    pki: &Pki,
    service: Counting<WhoAmI>,
    tokens: Option<StaticTokens>,
) -> ServerHandle {
    let mut builder = Server::builder().tls(pki.server_tls()).authorize(policy());
    if let Some(tokens) = tokens {
        builder = builder.bearer_tokens(tokens);
    }
    support::start_with(builder, service).await
}

fn https(server: &ServerHandle) -> String {
    format!("https://{}", server.local_addr())
}

async fn tls_client(
    server: &ServerHandle,
    tls: ClientTls,
) -> Result<EchoClient<Channel>, plexus_rpc::Error> {
    ClientBuilder::new(https(server))
        .tls(tls)
        .connect()
        .await
        .map(EchoClient::new)
}

async fn whoami(client: &mut EchoClient<Channel>) -> Result<String, Status> {
    let reply = client.unary(EchoRequest::default()).await?.into_inner();
    Ok(String::from_utf8(reply.payload.to_vec()).unwrap())
}

#[tokio::test]
async fn the_client_certificate_identity_reaches_the_handler() {
    let pki = Pki::new();
    let service = Counting::answering(WhoAmI);
    let server = start_mtls(&pki, service.clone(), None).await;
    let gateway = pki.ca.client(GATEWAY);
    let mut client = tls_client(&server, pki.client_tls(Some(&gateway)))
        .await
        .unwrap();
    assert_eq!(whoami(&mut client).await.unwrap(), GATEWAY);
    assert_eq!(service.calls(), 1);
}

#[tokio::test]
async fn a_valid_identity_calling_a_method_it_is_not_allowed_is_permission_denied() {
    let pki = Pki::new();
    let service = Counting::answering(WhoAmI);
    let server = start_mtls(&pki, service.clone(), None).await;
    let cli = pki.ca.client(CLI);
    let mut client = tls_client(&server, pki.client_tls(Some(&cli)))
        .await
        .unwrap();
    let status = whoami(&mut client).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(
        status.message().contains(CLI) && status.message().contains(UNARY),
        "{status:?}"
    );
    // The same identity may use the method open to any authenticated caller.
    let mut stream = client
        .server_stream(StreamRequest {
            payload: "x".into(),
            count: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(stream.message().await.unwrap().is_some());
    assert_eq!(
        service.calls(),
        1,
        "only the allowed call reached a handler"
    );
}

#[tokio::test]
async fn methods_no_rule_names_are_denied_by_default() {
    let pki = Pki::new();
    let service = Counting::answering(WhoAmI);
    let server = start_mtls(&pki, service.clone(), None).await;
    let gateway = pki.ca.client(GATEWAY);
    let mut client = tls_client(&server, pki.client_tls(Some(&gateway)))
        .await
        .unwrap();
    let requests = tokio_stream::iter(vec![EchoRequest::default()]);
    let status = client.client_stream(requests).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("denies by default"), "{status:?}");
    assert_eq!(service.calls(), 0);
}

#[tokio::test]
async fn no_client_certificate_is_unauthenticated() {
    let pki = Pki::new();
    let service = Counting::answering(WhoAmI);
    let server = start_mtls(&pki, service.clone(), None).await;
    let mut client = tls_client(&server, pki.client_tls(None)).await.unwrap();
    let status = whoami(&mut client).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(
        status.message().contains("client certificate"),
        "{status:?}"
    );
    assert_eq!(service.calls(), 0);
}

#[tokio::test]
async fn requiring_client_certificates_refuses_clients_without_one_in_the_handshake() {
    let pki = Pki::new();
    let service = Counting::answering(WhoAmI);
    let builder = Server::builder()
        .tls(pki.server_tls().require_client_certificate(true))
        .authorize(policy());
    let server = support::start_with(builder, service.clone()).await;
    let refused = match tls_client(&server, pki.client_tls(None)).await {
        Err(e) => e.to_string(),
        Ok(mut client) => whoami(&mut client).await.unwrap_err().to_string(),
    };
    assert!(!refused.is_empty());
    let gateway = pki.ca.client(GATEWAY);
    let mut client = tls_client(&server, pki.client_tls(Some(&gateway)))
        .await
        .unwrap();
    assert_eq!(whoami(&mut client).await.unwrap(), GATEWAY);
    assert_eq!(service.calls(), 1);
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused_in_the_handshake() {
    let pki = Pki::new();
    let service = Counting::answering(WhoAmI);
    let server = start_mtls(&pki, service.clone(), None).await;
    let stranger = Ca::new("another CA").client(GATEWAY);
    let outcome = match tls_client(&server, pki.client_tls(Some(&stranger))).await {
        Err(e) => Err(e.to_string()),
        Ok(mut client) => whoami(&mut client)
            .await
            .map_err(|s| format!("{:?}: {}", s.code(), s.message())),
    };
    let err = outcome.expect_err("a certificate from another CA must not be accepted");
    // Refused by the TLS handshake, not by the policy.
    assert!(
        err.starts_with("Unavailable") && err.contains("UnknownCA"),
        "{err}"
    );
    assert_eq!(service.calls(), 0);
    // The server keeps serving legitimate clients.
    let gateway = pki.ca.client(GATEWAY);
    let mut client = tls_client(&server, pki.client_tls(Some(&gateway)))
        .await
        .unwrap();
    assert_eq!(whoami(&mut client).await.unwrap(), GATEWAY);
}

#[tokio::test]
async fn plaintext_to_a_tls_port_is_refused() {
    let pki = Pki::new();
    let service = Counting::answering(WhoAmI);
    let server = start_mtls(&pki, service.clone(), None).await;
    let plaintext = ClientBuilder::new(server.url()).connect().await;
    let outcome = match plaintext {
        Err(e) => Err(e.to_string()),
        Ok(channel) => whoami(&mut EchoClient::new(channel))
            .await
            .map_err(|s| format!("{:?}: {}", s.code(), s.message())),
    };
    let err = outcome.expect_err("a plaintext call to a TLS port must fail");
    assert!(err.starts_with("Unavailable"), "{err}");
    assert_eq!(service.calls(), 0);
}

#[tokio::test]
async fn bearer_tokens_authenticate_and_bad_or_missing_tokens_are_refused() {
    let pki = Pki::new();
    let service = Counting::answering(WhoAmI);
    let tokens = StaticTokens::new().with("s3cret-gateway-token", GATEWAY);
    let server = start_mtls(&pki, service.clone(), Some(tokens)).await;

    let channel = ClientBuilder::new(https(&server))
        .tls(pki.client_tls(None))
        .bearer_token("s3cret-gateway-token")
        .connect()
        .await
        .unwrap();
    assert_eq!(
        whoami(&mut EchoClient::new(channel)).await.unwrap(),
        GATEWAY
    );

    let channel = ClientBuilder::new(https(&server))
        .tls(pki.client_tls(None))
        .bearer_token("guessed")
        .connect()
        .await
        .unwrap();
    let status = whoami(&mut EchoClient::new(channel)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("not valid"), "{status:?}");

    let mut client = tls_client(&server, pki.client_tls(None)).await.unwrap();
    let mut request = Request::new(EchoRequest::default());
    request
        .metadata_mut()
        .insert("authorization", "Basic Zm9vOmJhcg==".parse().unwrap());
    let status = client.unary(request).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("Bearer"), "{status:?}");

    let status = whoami(&mut client).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert_eq!(
        service.calls(),
        1,
        "only the valid token reached the handler"
    );
}

#[tokio::test]
async fn health_stays_open_to_anyone_under_the_policy() {
    let pki = Pki::new();
    let server = start_mtls(&pki, Counting::answering(WhoAmI), None).await;
    let channel = ClientBuilder::new(https(&server))
        .tls(pki.client_tls(None))
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let reply = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "plexus.echo.v1.Echo".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        reply.status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
}
