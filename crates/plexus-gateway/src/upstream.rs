//! Calling the upstream gRPC service, and turning its failures into
//! [`ApiError`]s.

use base64::Engine as _;
use plexus_rpc::client::Channel;
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage};
use serde_json::{Value as Json, json};
use tonic::client::Grpc;
use tonic::metadata::MetadataMap;
use tonic::{Status, Streaming};

use crate::codec::{DynamicCodec, WireCodec};
use crate::http_error::ApiError;
use crate::routes::Route;

/// Per-call settings of the upstream client.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallLimits {
    pub(crate) max_request_bytes: usize,
    pub(crate) max_response_bytes: usize,
}

fn client(channel: Channel, limits: CallLimits) -> Grpc<Channel> {
    Grpc::new(channel)
        .max_encoding_message_size(limits.max_request_bytes)
        .max_decoding_message_size(limits.max_response_bytes)
}

fn request<T>(message: T, metadata: MetadataMap) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    *request.metadata_mut() = metadata;
    request
}

async fn ready(grpc: &mut Grpc<Channel>, route: &Route) -> Result<(), Status> {
    grpc.ready().await.map_err(|e| {
        Status::unavailable(format!(
            "the upstream of {} is not reachable: {e}",
            route.rpc.full_name()
        ))
    })
}

/// A unary call: the request as protobuf wire bytes, the response's wire
/// bytes back.
pub(crate) async fn unary(
    channel: Channel,
    route: &Route,
    message: Vec<u8>,
    metadata: MetadataMap,
    limits: CallLimits,
) -> Result<bytes::Bytes, Status> {
    let mut grpc = client(channel, limits);
    ready(&mut grpc, route).await?;
    grpc.unary(
        request(message, metadata),
        route.grpc_path.clone(),
        WireCodec,
    )
    .await
    .map(tonic::Response::into_inner)
}

/// A server-streaming call, up to the response headers.
pub(crate) async fn server_streaming(
    channel: Channel,
    route: &Route,
    message: DynamicMessage,
    metadata: MetadataMap,
    limits: CallLimits,
) -> Result<Streaming<DynamicMessage>, Status> {
    let mut grpc = client(channel, limits);
    ready(&mut grpc, route).await?;
    let codec = DynamicCodec::new(route.rpc.output());
    grpc.server_streaming(request(message, metadata), route.grpc_path.clone(), codec)
        .await
        .map(tonic::Response::into_inner)
}

/// `google.rpc.Status`, the payload of `grpc-status-details-bin`.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_types::Any>,
}

/// The answer to a failed upstream call: the HTTP status of its code, its
/// message, and its details (each `Any` written in proto3 JSON when the
/// descriptors know its type, else as `@type` and base64 `value`).
pub(crate) fn from_status(status: &Status, pool: &DescriptorPool) -> ApiError {
    let mut error = ApiError::new(status.code(), status.message());
    if status.details().is_empty() {
        return error;
    }
    let details = match RpcStatus::decode(status.details()) {
        Ok(rpc) => rpc
            .details
            .iter()
            .map(|any| any_to_json(any, pool))
            .collect(),
        Err(_) => vec![json!({
            "@type": "grpc-status-details-bin",
            "value": base64::engine::general_purpose::STANDARD.encode(status.details()),
        })],
    };
    error.set_details(details);
    error
}

fn any_to_json(any: &prost_types::Any, pool: &DescriptorPool) -> Json {
    let name = any.type_url.rsplit('/').next().unwrap_or_default();
    let known = pool
        .get_message_by_name(name)
        .and_then(|desc| DynamicMessage::decode(desc, any.value.as_slice()).ok())
        .and_then(|m| serde_json::to_value(&m).ok());
    match known {
        Some(Json::Object(mut fields)) => {
            fields.insert("@type".to_owned(), Json::String(any.type_url.clone()));
            Json::Object(fields)
        }
        Some(value) => json!({ "@type": any.type_url, "value": value }),
        None => json!({
            "@type": any.type_url,
            "value": base64::engine::general_purpose::STANDARD.encode(&any.value),
        }),
    }
}
