//! The OpenAPI 3 document of a gateway, generated from the same
//! descriptors and bindings that route its requests.

mod paths;
mod schema;

use prost_reflect::FileDescriptor;
use serde_json::{Value as Json, json};

use crate::routes::RouteTable;
use schema::Schemas;

/// The name of the error body's component schema.
const ERROR_SCHEMA: &str = "plexus.gateway.Error";

/// The whole document.
pub(crate) fn document(routes: &RouteTable) -> Json {
    let mut schemas = Schemas::default();
    schemas.insert(
        ERROR_SCHEMA,
        json!({
            "type": "object",
            "description": "Every failed request is answered with this body.",
            "required": ["code", "message", "details"],
            "properties": {
                "code": { "type": "string", "description": "the gRPC status code name, e.g. NOT_FOUND" },
                "message": { "type": "string" },
                "details": { "type": "array", "items": { "type": "object", "additionalProperties": {} } },
            },
        }),
    );
    let paths = paths::paths(routes, &mut schemas);
    let mut tags: Vec<String> = routes
        .iter()
        .map(|r| r.rpc.parent_service().full_name().to_owned())
        .collect();
    tags.dedup();
    tags.sort();
    tags.dedup();
    let tags: Vec<Json> = tags
        .into_iter()
        .map(|name| json!({ "name": name }))
        .collect();
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "plexus gateway",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "REST/JSON routes transcoded to gRPC. Send `plexus-timeout-ms` (or `grpc-timeout`) for a deadline and `traceparent` to continue a trace.",
        },
        "tags": tags,
        "paths": paths,
        "components": { "schemas": schemas.into_components() },
    })
}

/// The leading comments of the element at `path` in `file`, trimmed.
pub(crate) fn comments(file: &FileDescriptor, path: &[i32]) -> Option<String> {
    let info = file.file_descriptor_proto().source_code_info.as_ref()?;
    let location = info.location.iter().find(|l| l.path == path)?;
    let text = location.leading_comments.as_deref()?;
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let text = lines.join("\n").trim().to_owned();
    (!text.is_empty()).then_some(text)
}
