//! The request pipeline: route, limits, deadline and trace, binding,
//! upstream call, response.

use std::sync::Arc;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use http::request::Parts;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use plexus_rpc::CallContext;
use prost::Message as _;
use prost_reflect::DynamicMessage;
use tonic::Code;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};

use crate::bind;
use crate::context;
use crate::http_error::ApiError;
use crate::routes::{BodyBinding, Route};
use crate::server::Shared;
use crate::stream::{self, Format, StreamSetup};
use crate::template::Captures;
use crate::transcode;
use crate::upstream;

/// The path of the OpenAPI document.
pub(crate) const OPENAPI_PATH: &str = "/openapi.json";

/// Answers one HTTP request.
pub(crate) async fn handle(shared: Arc<Shared>, request: Request<Body>) -> Response {
    match serve(&shared, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn serve(shared: &Shared, request: Request<Body>) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    if parts.uri.path() == OPENAPI_PATH {
        return openapi(shared, &parts.method);
    }
    let (route, captures) = shared.routes.find(&parts.method, parts.uri.path())?;
    let _request_slot = shared.requests.try_take().ok_or_else(|| {
        ApiError::new(
            Code::Unavailable,
            format!(
                "the gateway is serving its limit of {} requests; retry shortly",
                shared.config.max_concurrent_requests
            ),
        )
    })?;
    let deadline = context::deadline(&parts.headers, &shared.config, route.is_streaming())?;
    let trace = context::trace(&parts.headers);
    tracing::debug!(
        http.method = %parts.method,
        http.route = %route.spec.path,
        rpc.method = %route.rpc.full_name(),
        trace_id = %trace.trace_id(),
        span_id = %trace.span_id(),
        "gateway.request"
    );
    let body = read_body(&parts, body, shared.config.max_body_bytes).await?;
    let metadata = forwarded(&parts, &shared.config.forward_headers);
    let channel = shared.channels[route.upstream].clone();
    let limits = shared.call_limits;
    let ctx = CallContext::new(Some(deadline), trace);
    if route.is_streaming() {
        let message = request_message(route, &captures, &parts, &body)?;
        let permit = shared.streams.try_take().ok_or_else(|| {
            ApiError::new(
                Code::Unavailable,
                format!(
                    "the gateway has its limit of {} streams open; retry shortly",
                    shared.config.max_concurrent_streams
                ),
            )
        })?;
        let upstream = ctx
            .scope(upstream::server_streaming(
                channel, route, message, metadata, limits,
            ))
            .await
            .map_err(|status| upstream::from_status(&status, &shared.pool))?;
        let setup = StreamSetup {
            format: Format::negotiate(&parts.headers),
            deadline,
            options: shared.serialize.clone(),
            pool: shared.pool.clone(),
            closing: shared.closing.clone(),
            _permit: permit,
        };
        return Ok(stream::respond(upstream, setup));
    }
    let request = request_bytes(shared, route, &captures, &parts, &body)?;
    let reply = ctx
        .scope(upstream::unary(channel, route, request, metadata, limits))
        .await
        .map_err(|status| upstream::from_status(&status, &shared.pool))?;
    let json = response_json(shared, route, &reply)?;
    Ok(json_response(StatusCode::OK, json))
}

/// The request message of a unary call as protobuf wire bytes: a whole
/// JSON body of a direct message is transcoded straight to them, path
/// variables appended (a later value of a field replaces or merges into
/// the body's, as when they are set on the message); anything else is
/// built as a `DynamicMessage`.
fn request_bytes(
    shared: &Shared,
    route: &Route,
    captures: &Captures<'_>,
    parts: &Parts,
    body: &[u8],
) -> Result<Vec<u8>, ApiError> {
    if matches!(route.body, BodyBinding::Whole)
        && !body.is_empty()
        && parts.uri.query().is_none()
        && shared.transcoder.is_direct(&route.rpc.input())
    {
        check_content_type(parts)?;
        let schema = shared.transcoder.schema();
        let direct = schema
            .direct(&route.rpc.input())
            .and_then(|index| transcode::json_to_wire::encode(schema, index, body));
        if let Some(mut bytes) = direct {
            if !captures.values.is_empty() {
                let bound = request_message(route, captures, parts, &[])?;
                bound.encode_raw(&mut bytes);
            }
            return Ok(bytes);
        }
    }
    Ok(request_message(route, captures, parts, body)?.encode_to_vec())
}

/// The JSON of a unary call's reply: straight from its wire bytes for a
/// direct message written whole, else through a `DynamicMessage`.
fn response_json(shared: &Shared, route: &Route, reply: &[u8]) -> Result<Vec<u8>, ApiError> {
    let output = route.rpc.output();
    let Some(field) = route.response_body.as_ref() else {
        return shared.transcoder.protobuf_to_json(&output, reply);
    };
    let message = DynamicMessage::decode(output.clone(), reply).map_err(|e| {
        ApiError::new(
            Code::Internal,
            format!(
                "the upstream sent a response that is not a valid {}: {e}",
                output.full_name()
            ),
        )
    })?;
    transcode::message_to_json(&message, Some(field), &shared.serialize)
}

fn openapi(shared: &Shared, method: &Method) -> Result<Response, ApiError> {
    if method != Method::GET && method != Method::HEAD {
        return Err(ApiError::new(
            Code::Unimplemented,
            format!("{method} is not allowed on {OPENAPI_PATH}; allowed: GET"),
        )
        .with_status(StatusCode::METHOD_NOT_ALLOWED)
        .with_allow(Some(HeaderValue::from_static("GET"))));
    }
    Ok(json_response(StatusCode::OK, shared.openapi.to_vec()))
}

fn json_response(status: StatusCode, json: Vec<u8>) -> Response {
    let mut response = (status, json).into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Reads the whole body, at most `limit` bytes (413 past it).
async fn read_body(parts: &Parts, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            Code::ResourceExhausted,
            format!("request body is larger than the gateway's limit of {limit} bytes"),
        )
        .with_status(StatusCode::PAYLOAD_TOO_LARGE)
    };
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(e) => Err(ApiError::bad_request(format!(
            "could not read the request body: {e}"
        ))),
    }
}

/// Builds the request message: body first, then path variables, then
/// query parameters.
fn request_message(
    route: &Route,
    captures: &Captures<'_>,
    parts: &Parts,
    body: &[u8],
) -> Result<DynamicMessage, ApiError> {
    let input = route.rpc.input();
    let mut message = match &route.body {
        BodyBinding::None => {
            if !body.is_empty() {
                return Err(ApiError::bad_request(format!(
                    "{} {} takes no request body; send its fields in the path and query",
                    route.spec.method, route.spec.path
                )));
            }
            DynamicMessage::new(input)
        }
        BodyBinding::Whole if body.is_empty() => DynamicMessage::new(input),
        BodyBinding::Whole => {
            check_content_type(parts)?;
            transcode::message_from_json(input, body)?
        }
        BodyBinding::Field(_) if body.is_empty() => DynamicMessage::new(input),
        BodyBinding::Field(field) => {
            check_content_type(parts)?;
            let value = transcode::field_from_json(&input, field, body)?;
            let mut message = DynamicMessage::new(input);
            message.set_field(field, value);
            message
        }
    };
    for ((var, path), capture) in route
        .template
        .variables
        .iter()
        .zip(&route.variables)
        .zip(&captures.values)
    {
        let value = capture.decode().map_err(|_| {
            ApiError::bad_field(
                &var.field,
                format!(
                    "path variable `{}` is not UTF-8 once percent-decoded",
                    var.field
                ),
            )
        })?;
        bind::set(&mut message, path, &value).map_err(|e| {
            ApiError::bad_field(&var.field, format!("path variable `{}`: {e}", var.field))
        })?;
    }
    if let Some(query) = parts.uri.query() {
        bind_query(route, &mut message, query)?;
    }
    Ok(message)
}

fn bind_query(route: &Route, message: &mut DynamicMessage, query: &str) -> Result<(), ApiError> {
    let input = route.rpc.input();
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let path = bind::resolve(&input, &key).map_err(|e| {
            ApiError::bad_field(&key, format!("unknown query parameter `{key}`: {e}"))
        })?;
        route.query_may_set(&path).map_err(|e| {
            ApiError::bad_field(
                &key,
                format!("query parameter `{key}` is not allowed here: {e}"),
            )
        })?;
        if !path.leaf().is_list() {
            let name = path.proto_name();
            if !seen.insert(name) {
                return Err(ApiError::bad_field(
                    &key,
                    format!("query parameter `{key}` is given twice but is not repeated"),
                ));
            }
        }
        bind::set(message, &path, &value)
            .map_err(|e| ApiError::bad_field(&key, format!("query parameter `{key}`: {e}")))?;
    }
    Ok(())
}

/// 415 unless the body is declared JSON (`application/json` or
/// `application/*+json`, UTF-8).
fn check_content_type(parts: &Parts) -> Result<(), ApiError> {
    let unsupported = |message: String| {
        ApiError::bad_request(message).with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
    };
    let Some(value) = parts.headers.get(CONTENT_TYPE) else {
        return Err(unsupported(
            "the request has a body but no content-type; send content-type: application/json"
                .to_owned(),
        ));
    };
    let text = value.to_str().unwrap_or_default();
    let mut pieces = text.split(';');
    let media = pieces
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let json = media == "application/json"
        || (media.starts_with("application/") && media.ends_with("+json"));
    let utf8 = pieces.all(|p| {
        let p = p.trim().to_ascii_lowercase();
        !p.starts_with("charset=") || p == "charset=utf-8" || p == "charset=\"utf-8\""
    });
    if json && utf8 {
        Ok(())
    } else {
        Err(unsupported(format!(
            "content-type `{text}` is not supported; send application/json (UTF-8)"
        )))
    }
}

/// The configured request headers, as gRPC metadata.
fn forwarded(parts: &Parts, names: &[http::HeaderName]) -> MetadataMap {
    let mut metadata = MetadataMap::new();
    for name in names {
        for value in parts.headers.get_all(name) {
            if let (Ok(key), Ok(value)) = (
                MetadataKey::from_bytes(name.as_str().as_bytes()),
                MetadataValue::try_from(value.as_bytes()),
            ) {
                metadata.append(key, value);
            }
        }
    }
    metadata
}
