//! Upstream failures: every gRPC code gets its HTTP status and the JSON
//! error body; details are written in proto3 JSON when their type is known.

use serde_json::json;

use crate::support::start;

#[tokio::test]
async fn every_grpc_code_maps_to_its_http_status() {
    let h = start().await;
    let table = [
        (1, 499, "CANCELLED"),
        (2, 500, "UNKNOWN"),
        (3, 400, "INVALID_ARGUMENT"),
        (4, 504, "DEADLINE_EXCEEDED"),
        (5, 404, "NOT_FOUND"),
        (6, 409, "ALREADY_EXISTS"),
        (7, 403, "PERMISSION_DENIED"),
        (8, 429, "RESOURCE_EXHAUSTED"),
        (9, 500, "FAILED_PRECONDITION"),
        (10, 409, "ABORTED"),
        (11, 500, "OUT_OF_RANGE"),
        (12, 500, "UNIMPLEMENTED"),
        (13, 500, "INTERNAL"),
        (14, 503, "UNAVAILABLE"),
        (15, 500, "DATA_LOSS"),
        (16, 401, "UNAUTHENTICATED"),
    ];
    for (code, status, name) in table {
        let message = format!("failure {code}");
        let body = format!(r#"{{"code": {code}, "message": "{message}"}}"#);
        let reply = h.http.json("POST", "/v1/fail", &body).await;
        let error = reply.assert_error(status, name, &[&message]);
        assert_eq!(error["details"], json!([]), "{error}");
    }
}

#[tokio::test]
async fn status_details_are_written_as_json() {
    let h = start().await;
    let reply = h
        .http
        .json(
            "POST",
            "/v1/fail",
            r#"{"code": 9, "message": "with details"}"#,
        )
        .await;
    let error = reply.assert_error(500, "FAILED_PRECONDITION", &["with details"]);
    assert_eq!(
        error["details"],
        json!([
            {"@type": "type.googleapis.com/plexus.gateway.test.v1.Author", "name": "detail", "born": 1900},
            {"@type": "type.googleapis.com/unknown.Type", "value": "AQID"},
        ])
    );
}

#[tokio::test]
async fn an_unreachable_upstream_is_503() {
    let h = start().await;
    h.server.shutdown().await.expect("stop the library server");
    let reply = h.http.get("/v1/books/b1").await;
    reply.assert_error(503, "UNAVAILABLE", &[]);
}
