//! plexus REST/JSON gateway: gRPC methods annotated with `google.api.http`
//! served as HTTP/JSON routes, transcoded onto the upstream gRPC call.
//!
//! - **Bindings**: every `google.api.http` rule (and its
//!   `additional_bindings`) of the configured services becomes a route.
//!   Path templates bind `{field}`, `{field.sub}`, `{field=segments/*}` and
//!   `{field=**}` into the request message; query parameters set the
//!   remaining fields (`?filter.genre=GENRE_FICTION&tags=a&tags=b`); `body:
//!   "*"` reads the whole message from the JSON body, `body: "field"` one
//!   field; `response_body` answers with one field of the response.
//! - **JSON**: the proto3 JSON mapping both ways (prost-reflect dynamic
//!   messages): camelCase and proto field names accepted, unknown fields
//!   refused with the field named, int64 written as strings, enums as names.
//! - **Streams**: server-streaming methods answer with Server-Sent Events
//!   (`text/event-stream`, one `data:` JSON event per message, a final
//!   `event: error` with the error body if the stream fails), or
//!   newline-delimited JSON when the request sends
//!   `Accept: application/x-ndjson`.
//! - **OpenAPI 3**: `GET /openapi.json` describes every route, generated
//!   from the same descriptors.
//! - **Errors**: a gRPC status becomes its HTTP status ([`http_status`])
//!   and the body `{"code": "NOT_FOUND", "message": "...", "details":
//!   [...]}`; client mistakes (invalid JSON, unknown or mistyped field,
//!   body over the limit, wrong content type, unknown route or method) are
//!   4xx whose message names the field or the problem.
//! - **Bounds** ([`GatewayConfig`]): connections, body size, concurrent
//!   requests and streams, default and maximum deadlines, upstream message
//!   size.
//! - **Extra routes** ([`GatewayBuilder::extra_routes`]): plain axum
//!   handlers on the same port, behind the same request slots, body limit,
//!   deadline and trace handling.
//!
//! # Deadline and trace headers
//!
//! | request header | meaning |
//! |---|---|
//! | `plexus-timeout-ms` ([`TIMEOUT_HEADER`](plexus_core::deadline::TIMEOUT_HEADER)) | the request's budget in whole milliseconds, e.g. `250` |
//! | `grpc-timeout` | the same in gRPC form (`250m`, `2S`), read when `plexus-timeout-ms` is absent |
//! | `traceparent` | W3C trace context; the gateway continues it with its own span and the upstream call continues that |
//!
//! The budget becomes the call's [`Deadline`](plexus_core::Deadline) (the
//! configured default when absent, never more than the configured maximum)
//! and the upstream gRPC call carries what is left of it as
//! `grpc-timeout`. A request whose budget is spent is answered 504
//! `DEADLINE_EXCEEDED` without calling upstream. A malformed timeout header
//! is a 400; a malformed `traceparent` is ignored (a new trace starts).
//!
//! # Example
//!
//! ```no_run
//! use plexus_gateway::Gateway;
//! use plexus_rpc::client::ClientBuilder;
//!
//! # async fn run(descriptor_set: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
//! let orders = ClientBuilder::new("http://127.0.0.1:50051").connect_lazy()?;
//! let gateway = Gateway::builder()
//!     .descriptor_set(descriptor_set)
//!     .upstream("shop.orders.v1.Orders", orders)
//!     .build()?
//!     .bind("127.0.0.1:8080")
//!     .await?
//!     .spawn();
//! println!("REST on {}, OpenAPI at {}/openapi.json", gateway.url(), gateway.url());
//! # Ok(()) }
//! ```
//!
//! The descriptor set must include `google/api/annotations.proto` and
//! `google/api/http.proto` (plexus ships them in `proto/google/api/`) and
//! keep the methods' extension options: encode it with
//! `protox::Compiler::encode_file_descriptor_set` (or `protoc
//! --include_imports -o`). Going through `prost_types::FileDescriptorSet`
//! (e.g. `protox::compile(..)?.encode_to_vec()`) drops the options, and
//! [`build`](GatewayBuilder::build) then finds nothing to expose.

mod bind;
mod codec;
mod config;
mod context;
mod error;
mod extra;
mod handler;
mod http_error;
mod listener;
mod openapi;
mod routes;
mod rule;
mod server;
mod slots;
mod stream;
mod template;
mod transcode;
mod transcoder;
mod upstream;

pub use codec::{DynamicCodec, DynamicDecoder, DynamicEncoder};
pub use config::GatewayConfig;
pub use error::Error;
pub use http_error::{ApiError, code_name, http_status};
pub use server::{BoundGateway, Gateway, GatewayBuilder, GatewayHandle};
pub use transcoder::Transcoder;
