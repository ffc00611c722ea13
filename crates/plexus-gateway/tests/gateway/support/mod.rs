//! Shared test support: the Library service behind a real plexus server,
//! the gateway in front of it, and a small HTTP client.
#![allow(dead_code)]

pub mod http;
pub mod library;

use std::time::Duration;

use plexus_gateway::{Gateway, GatewayConfig, GatewayHandle};
use plexus_rpc::Server;
use plexus_rpc::client::ClientBuilder;
use plexus_rpc::server::ServerHandle;

pub use self::http::Http;
pub use self::library::TestLibrary;

/// Generated types of the test proto.
#[allow(missing_docs, clippy::all)]
pub mod v1 {
    tonic::include_proto!("plexus.gateway.test.v1");
}

/// The encoded descriptor set of the test proto (with its imports).
pub const DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/library_descriptor.bin"));

/// The fully qualified name of the test service.
pub const SERVICE: &str = "plexus.gateway.test.v1.Library";

/// Bound on anything that should happen promptly.
pub const PROMPT: Duration = Duration::from_secs(10);

/// The Library service on a plexus server, the gateway in front of it, and
/// an HTTP client of the gateway.
pub struct Harness {
    pub library: TestLibrary,
    pub server: ServerHandle,
    pub gateway: GatewayHandle,
    pub http: Http,
    /// The gateway's routes, as `Gateway::routes` lists them.
    pub routes: Vec<String>,
}

/// Starts everything with the default gateway config.
pub async fn start() -> Harness {
    start_with(GatewayConfig::default()).await
}

/// Starts everything with `config`.
pub async fn start_with(config: GatewayConfig) -> Harness {
    let library = TestLibrary::default();
    let server = Server::builder()
        .add_service(v1::library_server::LibraryServer::new(library.clone()))
        .bind("127.0.0.1:0")
        .await
        .expect("bind the library server")
        .spawn();
    let channel = ClientBuilder::new(server.url())
        .connect()
        .await
        .expect("connect to the library server");
    let gateway = Gateway::builder()
        .descriptor_set(DESCRIPTOR_SET)
        .upstream(SERVICE, channel)
        .config(config)
        .build()
        .expect("build the gateway");
    let routes = gateway.routes();
    let gateway = gateway
        .bind("127.0.0.1:0")
        .await
        .expect("bind the gateway")
        .spawn();
    let http = Http::new(gateway.url());
    Harness {
        library,
        server,
        gateway,
        http,
        routes,
    }
}
