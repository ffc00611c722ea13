//! Every kind of binding: path variables (simple, nested, multi-segment,
//! `**`), query parameters of every type, `body: "*"` and `body: "field"`,
//! additional bindings, `response_body`, custom verbs and methods.

use serde_json::json;

use crate::support::start;

#[tokio::test]
async fn get_binds_path_variables_and_a_query_enum() {
    let h = start().await;
    let reply = h
        .http
        .get("/v1/shelves/s%201/books/b2?view=VIEW_FULL")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let body = reply.json();
    assert_eq!(body["name"], "shelves/s 1/books/b2");
    assert_eq!(body["title"], "view 2", "the enum came by name");
    // int64 is a string in proto3 JSON; unset fields are left out.
    assert_eq!(body["isbn"], "9007199254740993");
    assert!(body.get("pages").is_none(), "{body}");

    let by_number = h.http.get("/v1/shelves/s/books/b?view=1").await.json();
    assert_eq!(by_number["title"], "view 1", "the enum came by number");
}

#[tokio::test]
async fn additional_bindings_and_response_body() {
    let h = start().await;
    let body = h.http.get("/v1/books/b7").await.json();
    assert_eq!(
        body["name"], "shelves//books/b7",
        "the second binding has no shelf"
    );

    let tags = h.http.get("/v1/shelves/s/books/b/tags").await;
    assert_eq!(tags.status, 200, "{}", tags.text());
    assert_eq!(
        tags.json(),
        json!(["a", "b"]),
        "response_body answers one field"
    );
}

#[tokio::test]
async fn post_binds_the_body_to_one_field_and_the_rest_from_path_and_query() {
    let h = start().await;
    let reply = h
        .http
        .json(
            "POST",
            "/v1/shelves/fiction/books?requestId=r-1",
            r#"{"title": "Dune", "author": {"name": "Herbert", "born": 1920},
                "pages": 412, "isbn": "9780441013593", "genre": "GENRE_FICTION",
                "tags": ["sf"], "cover": "AQID", "published": "1965-08-01T00:00:00Z",
                "labels": {"k": "v"}, "rating": 4.5, "in_print": true, "subtitle": ""}"#,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["name"], "shelves/fiction/books/new");
    assert_eq!(body["title"], "Dune");
    assert_eq!(body["author"], json!({"name": "Herbert", "born": 1920}));
    assert_eq!(body["pages"], 412);
    assert_eq!(body["isbn"], "9780441013593");
    assert_eq!(body["genre"], "GENRE_FICTION");
    assert_eq!(body["cover"], "AQID", "bytes round-trip as base64");
    assert_eq!(body["published"], "1965-08-01T00:00:00Z");
    assert_eq!(body["labels"], json!({"k": "v", "request_id": "r-1"}));
    assert_eq!(body["rating"], 4.5);
    assert_eq!(
        body["inPrint"], true,
        "proto names are accepted, JSON names written"
    );
    assert_eq!(
        body["subtitle"], "",
        "an explicitly set optional field is written"
    );
}

#[tokio::test]
async fn patch_binds_a_nested_field_from_a_multi_segment_variable() {
    let h = start().await;
    let reply = h
        .http
        .json(
            "PATCH",
            "/v1/shelves/s1/books/b1?updateMask=title,author.name",
            r#"{"name": "ignored: the path wins", "title": "New"}"#,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["name"], "shelves/s1/books/b1");
    assert_eq!(body["title"], "New");
    assert_eq!(body["labels"]["update_mask"], "title,author.name");

    let wrong_shape = h.http.json("PATCH", "/v1/shelves/s1/b1", "{}").await;
    wrong_shape.assert_error(404, "NOT_FOUND", &["no route"]);
}

#[tokio::test]
async fn delete_binds_a_multi_segment_variable_and_answers_empty() {
    let h = start().await;
    let reply = h
        .http
        .send("DELETE", "/v1/shelves/s/books/b", &[], b"")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json(), json!({}));

    let missing = h
        .http
        .send("DELETE", "/v1/shelves/s/books/missing", &[], b"")
        .await;
    missing.assert_error(404, "NOT_FOUND", &["shelves/s/books/missing not found"]);
}

#[tokio::test]
async fn query_parameters_of_every_type() {
    let h = start().await;
    let reply = h
        .http
        .get(
            "/v1/books:search?query=dune%20messiah&tags=a&tags=b&minIsbn=-5\
             &filter.inPrint=true&filter.genre=GENRE_HISTORY&filter.author.name=Herbert\
             &limit=10&cursor=AQID&min_rating=2.5&publishedAfter=2020-01-01T00:00:00Z\
             &page_counts=1&page_counts=2",
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let echo = &reply.json()["echo"];
    assert_eq!(
        *echo,
        json!({
            "query": "dune messiah",
            "tags": ["a", "b"],
            "minIsbn": "-5",
            "filter": {"inPrint": true, "genre": "GENRE_HISTORY", "author": {"name": "Herbert"}},
            "limit": 10,
            "cursor": "AQID",
            "minRating": 2.5,
            "publishedAfter": "2020-01-01T00:00:00Z",
            "pageCounts": [1, 2],
        })
    );
}

#[tokio::test]
async fn rest_variables_take_the_remaining_path() {
    let h = start().await;
    let body = h
        .http
        .get("/v1/files/docs/guide/intro%20one.md")
        .await
        .json();
    assert_eq!(body["path"], "docs/guide/intro one.md");
}

#[tokio::test]
async fn body_star_binds_the_whole_message() {
    let h = start().await;
    let reply = h
        .http
        .json("POST", "/v1/fail", r#"{"code": 0, "message": "fine"}"#)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json(), json!({"message": "fine"}));

    let empty = h.http.send("POST", "/v1/fail", &[], b"").await;
    assert_eq!(
        empty.status,
        200,
        "an empty body is the empty message: {}",
        empty.text()
    );
}

#[tokio::test]
async fn custom_methods_and_unannotated_methods() {
    let h = start().await;
    let reply = h.http.send("OPTIONS", "/v1/ping", &[], b"").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json(), json!({"pong": "pong"}));

    let routes = &h.routes;
    assert!(routes.iter().all(|r| !r.contains("Hidden")), "{routes:?}");
    assert_eq!(routes.len(), 12, "{routes:?}");
}
