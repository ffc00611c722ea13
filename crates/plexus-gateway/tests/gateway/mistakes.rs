//! Client mistakes: each is a 4xx whose message names the field or the
//! problem, and none reaches the upstream service.

use std::sync::atomic::Ordering;

use plexus_gateway::GatewayConfig;

use crate::support::{Harness, start, start_with};

const CREATE: &str = "/v1/shelves/s/books";

fn calls(h: &Harness) -> usize {
    h.library.calls.load(Ordering::SeqCst)
}

#[tokio::test]
async fn invalid_json_names_line_and_column() {
    let h = start().await;
    let reply = h
        .http
        .json("POST", CREATE, "{\n  \"title\": \"x\",\n  oops\n}")
        .await;
    reply.assert_error(
        400,
        "INVALID_ARGUMENT",
        &["invalid JSON", "line 3 column 3"],
    );
    let trailing = h.http.json("POST", CREATE, r#"{"title": "x"} {}"#).await;
    trailing.assert_error(400, "INVALID_ARGUMENT", &["invalid JSON", "trailing"]);
    let truncated = h.http.json("POST", CREATE, r#"{"title": "#).await;
    truncated.assert_error(400, "INVALID_ARGUMENT", &["invalid JSON", "EOF"]);
    assert_eq!(calls(&h), 0);
}

#[tokio::test]
async fn unknown_fields_are_named_with_their_path() {
    let h = start().await;
    let top = h
        .http
        .json("POST", CREATE, r#"{"title": "x", "colour": "red"}"#)
        .await;
    let body = top.assert_error(400, "INVALID_ARGUMENT", &["unknown field `colour`"]);
    assert_eq!(
        body["details"][0]["fieldViolations"][0]["field"],
        "book.colour"
    );

    let nested = h
        .http
        .json("POST", CREATE, r#"{"author": {"name": "x", "age": 3}}"#)
        .await;
    let body = nested.assert_error(
        400,
        "INVALID_ARGUMENT",
        &["unknown field `age`", "book.author"],
    );
    assert_eq!(
        body["details"][0]["fieldViolations"][0]["field"],
        "book.author.age"
    );

    let whole = h.http.json("POST", "/v1/fail", r#"{"cod": 1}"#).await;
    whole.assert_error(400, "INVALID_ARGUMENT", &["unknown field `cod`"]);
    assert_eq!(calls(&h), 0);
}

#[tokio::test]
async fn wrong_field_types_name_the_field() {
    let h = start().await;
    for (body, field, needle) in [
        (r#"{"pages": "many"}"#, "book.pages", "book.pages"),
        (r#"{"pages": 1.5}"#, "book.pages", "book.pages"),
        (r#"{"tags": "not-a-list"}"#, "book.tags", "book.tags"),
        (r#"{"tags": ["ok", 7]}"#, "book.tags[1]", "book.tags[1]"),
        (r#"{"genre": "GENRE_POETRY"}"#, "book.genre", "book.genre"),
        (
            r#"{"author": {"born": true}}"#,
            "book.author.born",
            "book.author.born",
        ),
        (
            r#"{"published": "yesterday"}"#,
            "book.published",
            "book.published",
        ),
        (r#"{"cover": "***"}"#, "book.cover", "book.cover"),
        (r#"{"isbn": "12x"}"#, "book.isbn", "book.isbn"),
        (r#"{"labels": {"k": 1}}"#, "book.labels", "book.labels"),
    ] {
        let reply = h.http.json("POST", CREATE, body).await;
        let error = reply.assert_error(400, "INVALID_ARGUMENT", &[needle]);
        let named = error["details"][0]["fieldViolations"][0]["field"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            named.starts_with(field),
            "{body}: detail names {named}, not {field}"
        );
    }
    let not_object = h.http.json("POST", "/v1/fail", "[1, 2]").await;
    not_object.assert_error(400, "INVALID_ARGUMENT", &["invalid"]);
    assert_eq!(calls(&h), 0);
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let mut config = GatewayConfig::default();
    config.max_body_bytes = 1024;
    let h = start_with(config).await;
    let big = format!(r#"{{"title": "{}"}}"#, "x".repeat(2048));
    let reply = h.http.json("POST", CREATE, &big).await;
    reply.assert_error(413, "RESOURCE_EXHAUSTED", &["1024 bytes"]);
    let fits = format!(r#"{{"title": "{}"}}"#, "x".repeat(900));
    assert_eq!(h.http.json("POST", CREATE, &fits).await.status, 200);
    assert_eq!(calls(&h), 1);
}

#[tokio::test]
async fn the_default_body_limit_is_4_mib() {
    let h = start().await;
    let big = format!(r#"{{"title": "{}"}}"#, "x".repeat(4 * 1024 * 1024));
    let reply = h.http.json("POST", CREATE, &big).await;
    reply.assert_error(413, "RESOURCE_EXHAUSTED", &["4194304 bytes"]);
}

#[tokio::test]
async fn a_wrong_or_missing_content_type_is_415() {
    let h = start().await;
    let body = br#"{"title": "x"}"#;
    let missing = h.http.send("POST", CREATE, &[], body).await;
    missing.assert_error(
        415,
        "INVALID_ARGUMENT",
        &["no content-type", "application/json"],
    );
    for wrong in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/json; charset=latin1",
    ] {
        let reply = h
            .http
            .send("POST", CREATE, &[("content-type", wrong)], body)
            .await;
        reply.assert_error(415, "INVALID_ARGUMENT", &[wrong, "application/json"]);
    }
    for right in [
        "application/json; charset=utf-8",
        "application/merge-patch+json",
        "Application/JSON",
    ] {
        let reply = h
            .http
            .send("POST", CREATE, &[("content-type", right)], body)
            .await;
        assert_eq!(reply.status, 200, "{right}: {}", reply.text());
    }
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405() {
    let h = start().await;
    let reply = h.http.get("/v2/nothing/here").await;
    reply.assert_error(404, "NOT_FOUND", &["GET /v2/nothing/here"]);

    let reply = h.http.send("PUT", "/v1/shelves/s/books/b", &[], b"").await;
    reply.assert_error(405, "UNIMPLEMENTED", &["PUT", "GET"]);
    let mut allow: Vec<&str> = reply.header("allow").unwrap_or("").split(", ").collect();
    allow.sort_unstable();
    assert_eq!(
        allow,
        ["DELETE", "GET", "PATCH"],
        "every method bound to the path"
    );

    let reply = h.http.send("DELETE", "/v1/openapi.json", &[], b"").await;
    reply.assert_error(404, "NOT_FOUND", &[]);
    let reply = h.http.send("POST", "/openapi.json", &[], b"").await;
    reply.assert_error(405, "UNIMPLEMENTED", &["GET"]);
    assert_eq!(calls(&h), 0);
}

#[tokio::test]
async fn bad_query_parameters_are_named() {
    let h = start().await;
    for (query, needles) in [
        ("nope=1", &["unknown query parameter `nope`"][..]),
        ("limit=ten", &["`limit`", "`ten`"]),
        ("limit=-1", &["`limit`"]),
        ("min_isbn=99999999999999999999", &["`min_isbn`"]),
        ("filter.genre=POETRY", &["`filter.genre`", "GENRE_FICTION"]),
        ("filter.inPrint=maybe", &["`filter.inPrint`", "boolean"]),
        ("filter=x", &["`filter`", "message"]),
        ("cursor=%%%", &["`cursor`"]),
        ("publishedAfter=soon", &["`publishedAfter`", "Timestamp"]),
        ("query=a&query=b", &["`query`", "twice"]),
        ("filter.author.nope=1", &["`filter.author.nope`"]),
    ] {
        let reply = h.http.get(&format!("/v1/books:search?{query}")).await;
        reply.assert_error(400, "INVALID_ARGUMENT", needles);
    }
    // Fields bound by the path or the body cannot be set by query.
    let reply = h.http.get("/v1/shelves/s/books/b?shelf=other").await;
    reply.assert_error(400, "INVALID_ARGUMENT", &["`shelf`", "path"]);
    let reply = h
        .http
        .json("POST", "/v1/shelves/s/books?book.title=x", "{}")
        .await;
    reply.assert_error(400, "INVALID_ARGUMENT", &["`book.title`", "body"]);
    let reply = h.http.json("POST", "/v1/fail?code=1", "{}").await;
    reply.assert_error(400, "INVALID_ARGUMENT", &["`code`", "body"]);
    assert_eq!(calls(&h), 0);
}

#[tokio::test]
async fn other_request_mistakes() {
    let h = start().await;
    let reply = h
        .http
        .send("GET", "/v1/shelves/s/books/b", &[], b"{}")
        .await;
    reply.assert_error(400, "INVALID_ARGUMENT", &["takes no request body"]);
    let reply = h.http.get("/v1/shelves/%FF/books/b").await;
    reply.assert_error(400, "INVALID_ARGUMENT", &["`shelf`", "UTF-8"]);
    let reply = h
        .http
        .send("GET", "/v1/inspect", &[("plexus-timeout-ms", "soon")], b"")
        .await;
    reply.assert_error(400, "INVALID_ARGUMENT", &["plexus-timeout-ms"]);
    let reply = h
        .http
        .send("GET", "/v1/inspect", &[("grpc-timeout", "5 seconds")], b"")
        .await;
    reply.assert_error(400, "INVALID_ARGUMENT", &["grpc-timeout"]);
    assert_eq!(calls(&h), 0);
}
