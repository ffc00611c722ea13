//! [`ApiError`]: how every failed request is answered — an HTTP status and
//! the JSON body `{"code": "<GRPC_CODE_NAME>", "message": "...", "details": [...]}`.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{CONTENT_TYPE, HeaderValue};
use serde_json::{Value as Json, json};
use tonic::Code;

/// The HTTP status a gRPC status code is answered with.
///
/// | gRPC | HTTP |
/// |---|---|
/// | `OK` | 200 |
/// | `INVALID_ARGUMENT` | 400 |
/// | `UNAUTHENTICATED` | 401 |
/// | `PERMISSION_DENIED` | 403 |
/// | `NOT_FOUND` | 404 |
/// | `ALREADY_EXISTS`, `ABORTED` | 409 |
/// | `RESOURCE_EXHAUSTED` | 429 |
/// | `CANCELLED` | 499 (client closed request) |
/// | `UNAVAILABLE` | 503 |
/// | `DEADLINE_EXCEEDED` | 504 |
/// | any other | 500 |
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument => StatusCode::BAD_REQUEST,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Cancelled => client_closed_request(),
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// 499, the de-facto status for a request its client gave up on.
fn client_closed_request() -> StatusCode {
    StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST)
}

/// The canonical name of a gRPC code, e.g. `INVALID_ARGUMENT`.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// A failed request: the HTTP status, the gRPC code named in the body, a
/// message for people, and structured details.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: Code,
    message: String,
    details: Vec<Json>,
    allow: Option<HeaderValue>,
}

impl ApiError {
    /// An error with the HTTP status of `code` ([`http_status`]).
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        ApiError {
            status: http_status(code),
            code,
            message: message.into(),
            details: Vec::new(),
            allow: None,
        }
    }

    /// A client mistake: 400 `INVALID_ARGUMENT`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(Code::InvalidArgument, message)
    }

    /// A client mistake about one field: 400, with a `BadRequest` detail
    /// naming the field.
    pub fn bad_field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        let detail = json!({
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [{"field": field, "description": message}],
        });
        ApiError::bad_request(message).with_detail(detail)
    }

    /// Overrides the HTTP status (the body keeps the gRPC code).
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// Adds one structured detail.
    pub fn with_detail(mut self, detail: Json) -> Self {
        self.details.push(detail);
        self
    }

    /// Sets the `Allow` header of a 405 answer.
    pub(crate) fn with_allow(mut self, allow: Option<HeaderValue>) -> Self {
        self.allow = allow;
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The gRPC code named in the body.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The message for people.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The JSON body.
    pub fn body(&self) -> Json {
        json!({
            "code": code_name(self.code),
            "message": self.message,
            "details": self.details,
        })
    }

    pub(crate) fn set_details(&mut self, details: Vec<Json>) {
        self.details = details;
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status,
            code_name(self.code),
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.body()).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(allow) = self.allow {
            response.headers_mut().insert(http::header::ALLOW, allow);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_the_documented_http_status() {
        let table = [
            (Code::InvalidArgument, 400),
            (Code::Unauthenticated, 401),
            (Code::PermissionDenied, 403),
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::Aborted, 409),
            (Code::ResourceExhausted, 429),
            (Code::Cancelled, 499),
            (Code::DeadlineExceeded, 504),
            (Code::Unavailable, 503),
            (Code::Internal, 500),
            (Code::Unknown, 500),
            (Code::DataLoss, 500),
            (Code::FailedPrecondition, 500),
            (Code::Unimplemented, 500),
        ];
        for (code, status) in table {
            assert_eq!(http_status(code).as_u16(), status, "{code:?}");
        }
    }
}
