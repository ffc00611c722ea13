//! `/openapi.json`: a valid OpenAPI 3 document describing every route.

use serde_json::{Value as Json, json};

use crate::support::start;

/// Every `$ref` in `value`.
fn refs<'v>(value: &'v Json, out: &mut Vec<&'v str>) {
    match value {
        Json::Object(map) => {
            for (key, v) in map {
                if key == "$ref" {
                    out.push(v.as_str().expect("a $ref is a string"));
                } else {
                    refs(v, out);
                }
            }
        }
        Json::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_parses_as_openapi_3_and_every_ref_resolves() {
    let h = start().await;
    let reply = h.http.get("/openapi.json").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let doc: openapiv3::OpenAPI =
        serde_json::from_slice(&reply.body).expect("the document parses as OpenAPI 3");
    assert!(doc.openapi.starts_with("3.0"), "{}", doc.openapi);

    let json = reply.json();
    let schemas = json["components"]["schemas"].as_object().expect("schemas");
    let mut all = Vec::new();
    refs(&json, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{r} is not a component schema"));
        assert!(schemas.contains_key(name), "{r} does not resolve");
    }

    // Every route is documented, under its method, with one operation id each.
    let mut ids = Vec::new();
    for route in &h.routes {
        let (method, rest) = route.split_once(' ').expect("METHOD /path");
        let path = rest.split(" -> ").next().expect("path");
        let path = path
            .replace("{book.name=shelves/*/books/*}", "{book.name}")
            .replace("{name=shelves/*/books/*}", "{name}")
            .replace("{path=**}", "{path}");
        let op = &json["paths"][&path][method.to_lowercase()];
        assert!(op.is_object(), "{route} is not documented at {path}");
        ids.push(op["operationId"].as_str().expect("operationId").to_owned());
        for param in op["parameters"].as_array().expect("parameters") {
            if param["in"] == "path" {
                let name = param["name"].as_str().expect("name");
                assert!(path.contains(&format!("{{{name}}}")), "{path} lacks {name}");
            }
        }
    }
    let count = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count, "operation ids are unique: {ids:?}");
}

#[tokio::test]
async fn parameters_bodies_and_responses_follow_the_bindings() {
    let h = start().await;
    let json = h.http.get("/openapi.json").await.json();
    let paths = &json["paths"];

    let get = &paths["/v1/shelves/{shelf}/books/{book_id}"]["get"];
    assert_eq!(get["operationId"], "Library_GetBook");
    let params: Vec<(&str, &str)> = get["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or(""),
                p["in"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        params,
        [("shelf", "path"), ("book_id", "path"), ("view", "query")]
    );
    assert_eq!(
        get["parameters"][2]["schema"],
        json!({"type": "string", "enum": ["VIEW_UNSPECIFIED", "VIEW_BASIC", "VIEW_FULL"]})
    );
    assert!(get.get("requestBody").is_none());
    assert_eq!(
        get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/plexus.gateway.test.v1.Book"
    );
    assert_eq!(
        get["responses"]["default"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/plexus.gateway.Error"
    );
    assert!(
        get["description"]
            .as_str()
            .unwrap_or("")
            .contains("Path variables")
    );

    let tags = &paths["/v1/shelves/{shelf}/books/{book_id}/tags"]["get"];
    assert_eq!(
        tags["responses"]["200"]["content"]["application/json"]["schema"],
        json!({"type": "array", "items": {"type": "string"}})
    );

    let create = &paths["/v1/shelves/{shelf}/books"]["post"];
    assert_eq!(
        create["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/plexus.gateway.test.v1.Book"
    );
    let names: Vec<&str> = create["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .map(|p| p["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, ["shelf", "requestId"]);

    let search = &paths["/v1/books:search"]["get"];
    let names: Vec<&str> = search["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .map(|p| p["name"].as_str().unwrap_or(""))
        .collect();
    assert!(names.contains(&"filter.author.name"), "{names:?}");
    assert!(names.contains(&"tags"), "{names:?}");
    assert!(names.contains(&"publishedAfter"), "{names:?}");

    let watch = &paths["/v1/shelves/{shelf}:watch"]["get"]["responses"]["200"]["content"];
    assert_eq!(watch["text/event-stream"]["schema"]["type"], "string");
    assert_eq!(
        watch["application/x-ndjson"]["schema"]["$ref"],
        "#/components/schemas/plexus.gateway.test.v1.Book"
    );

    let book = &json["components"]["schemas"]["plexus.gateway.test.v1.Book"]["properties"];
    assert_eq!(book["isbn"]["type"], "string", "int64 is a string");
    assert_eq!(book["cover"]["format"], "byte");
    assert_eq!(book["published"]["format"], "date-time");
    assert_eq!(book["genre"]["type"], "string");
    assert_eq!(book["labels"]["additionalProperties"]["type"], "string");
    assert_eq!(book["inPrint"]["type"], "boolean");
    assert_eq!(book["pages"]["format"], "int32");
}
