//! The plain JSON handlers: [`quote`] does the gateway's work by hand
//! (parse the JSON request, price it, write the JSON reply) and is served
//! both by a bare axum server and behind the gateway's own request
//! handling; [`hop`] answers the same request with no work at all, for the
//! "one loopback hop" of the gateway floor.

use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::json::{QuoteReplyJson, QuoteRequestJson};
use super::quote::{self, Invalid};

/// The route of [`quote`] on both servers that serve it.
pub const QUOTE_PATH: &str = "/v1/plain/quote";

/// The route of [`hop`] for a payload: `{HOP_PATH}/{payload name}`.
pub const HOP_PATH: &str = "/v1/plain/hop";

/// Reads a `QuoteRequest` from the JSON body, prices it with
/// [`quote::quote`] and answers the `QuoteReply` as JSON (the proto3 JSON
/// mapping, the bytes the gateway writes); a body that is not a valid
/// request is a 400 with a JSON error, as from the gateway.
pub async fn quote(body: Bytes) -> Response {
    let request: QuoteRequestJson = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return error(&format!("invalid JSON: {e}")),
    };
    match quote::quote(request.into()) {
        Ok(reply) => match serde_json::to_vec(&QuoteReplyJson::from(reply)) {
            Ok(json) => json_response(StatusCode::OK, json),
            Err(e) => error(&format!("cannot write the reply: {e}")),
        },
        Err(Invalid(reason)) => error(&reason),
    }
}

/// Reads the body and answers `reply`, the JSON reply the gateway writes
/// for that request, already encoded: the same bytes cross the loopback
/// both ways as through the gateway, and nothing else is done.
pub async fn hop(reply: Bytes, _body: Bytes) -> Response {
    let mut response = (StatusCode::OK, reply).into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn error(message: &str) -> Response {
    let body = serde_json::json!({
        "code": "INVALID_ARGUMENT",
        "message": message,
        "details": [],
    });
    json_response(StatusCode::BAD_REQUEST, body.to_string().into_bytes())
}

fn json_response(status: StatusCode, json: Vec<u8>) -> Response {
    let mut response = (status, json).into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
