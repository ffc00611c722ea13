//! The `paths` of the OpenAPI document: one operation per binding, with
//! its path and query parameters, request body and responses.

use std::collections::HashMap;

use http::Method;
use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value as Json, json};

use super::schema::{Schemas, is_scalar_like};
use super::{ERROR_SCHEMA, comments};
use crate::bind::FieldPath;
use crate::routes::{BodyBinding, Route, RouteTable};

/// How deep query parameters go into nested messages.
const MAX_QUERY_DEPTH: usize = 4;

/// The `paths` object.
pub(crate) fn paths(routes: &RouteTable, schemas: &mut Schemas) -> Map<String, Json> {
    let mut paths: Map<String, Json> = Map::new();
    let mut bindings_seen: HashMap<String, usize> = HashMap::new();
    // Declaration order (within a method) gives stable operation ids.
    let mut ordered: Vec<&Route> = routes.iter().collect();
    ordered.sort_by_key(|r| (r.rpc.full_name().to_owned(), r.binding_index));
    for route in ordered {
        let Some(method) = openapi_method(&route.spec.method) else {
            continue;
        };
        let seen = bindings_seen
            .entry(route.rpc.full_name().to_owned())
            .or_default();
        let operation_id = if *seen == 0 {
            format!("{}_{}", route.rpc.parent_service().name(), route.rpc.name())
        } else {
            format!(
                "{}_{}{}",
                route.rpc.parent_service().name(),
                route.rpc.name(),
                *seen + 1
            )
        };
        *seen += 1;
        let item = paths
            .entry(route.template.openapi_path())
            .or_insert_with(|| json!({}));
        if item.get(method).is_none() {
            item[method] = operation(route, operation_id, schemas);
        }
    }
    paths
}

fn openapi_method(method: &Method) -> Option<&'static str> {
    Some(match *method {
        Method::GET => "get",
        Method::PUT => "put",
        Method::POST => "post",
        Method::DELETE => "delete",
        Method::PATCH => "patch",
        Method::OPTIONS => "options",
        Method::HEAD => "head",
        Method::TRACE => "trace",
        _ => return None,
    })
}

fn operation(route: &Route, operation_id: String, schemas: &mut Schemas) -> Json {
    let rpc = &route.rpc;
    let mut op = json!({
        "operationId": operation_id,
        "tags": [rpc.parent_service().full_name()],
        "summary": format!("{} (gRPC {})", rpc.name(), rpc.full_name()),
        "parameters": parameters(route, schemas),
        "responses": responses(route, schemas),
    });
    if let Some(text) = comments(&rpc.parent_file(), rpc.path()) {
        op["description"] = Json::String(text);
    }
    let body = match &route.body {
        BodyBinding::None => None,
        BodyBinding::Whole => Some(schemas.message(&rpc.input())),
        BodyBinding::Field(field) => Some(schemas.field(field)),
    };
    if let Some(schema) = body {
        op["requestBody"] = json!({
            "required": true,
            "content": { "application/json": { "schema": schema } },
        });
    }
    op
}

fn parameters(route: &Route, schemas: &mut Schemas) -> Vec<Json> {
    let mut out = Vec::new();
    for (var, path) in route.template.variables.iter().zip(&route.variables) {
        let mut param = json!({
            "name": var.field,
            "in": "path",
            "required": true,
            "schema": schemas.field(path.leaf()),
        });
        let pattern = route.template.variable_pattern(var);
        if pattern != "*" {
            param["description"] = Json::String(format!("matches `{pattern}`"));
        }
        out.push(param);
    }
    if !matches!(route.body, BodyBinding::Whole) {
        let mut prefix = Vec::new();
        query(route, &route.rpc.input(), &mut prefix, schemas, &mut out);
    }
    out
}

/// One query parameter per field reachable from `message` that neither the
/// path nor the body sets; nested messages by dotted names.
fn query(
    route: &Route,
    message: &MessageDescriptor,
    prefix: &mut Vec<FieldDescriptor>,
    schemas: &mut Schemas,
    out: &mut Vec<Json>,
) {
    for field in message.fields() {
        prefix.push(field.clone());
        let path = FieldPath {
            fields: prefix.clone(),
        };
        if route.query_may_set(&path).is_ok() && !field.is_map() {
            match field.kind() {
                Kind::Message(inner) if !is_scalar_like(&inner) => {
                    let cycle = prefix[..prefix.len() - 1]
                        .iter()
                        .any(|f| matches!(f.kind(), Kind::Message(m) if m == inner));
                    if !field.is_list() && !cycle && prefix.len() < MAX_QUERY_DEPTH {
                        query(route, &inner, prefix, schemas, out);
                    }
                }
                _ => {
                    let names: Vec<&str> = prefix.iter().map(FieldDescriptor::json_name).collect();
                    let mut param = json!({
                        "name": names.join("."),
                        "in": "query",
                        "required": false,
                        "schema": schemas.field(&field),
                    });
                    if field.is_list() {
                        param["style"] = json!("form");
                        param["explode"] = json!(true);
                    }
                    if let Some(text) = comments(&message.parent_file(), field.path()) {
                        param["description"] = Json::String(text);
                    }
                    out.push(param);
                }
            }
        }
        prefix.pop();
    }
}

fn responses(route: &Route, schemas: &mut Schemas) -> Json {
    let output = route.rpc.output();
    let error = json!({
        "description": "The request failed: the HTTP status follows the gRPC code (INVALID_ARGUMENT 400, NOT_FOUND 404, DEADLINE_EXCEEDED 504, ...).",
        "content": { "application/json": { "schema": Schemas::reference(ERROR_SCHEMA) } },
    });
    let ok = if route.is_streaming() {
        let item = schemas.message(&output);
        json!({
            "description": format!(
                "A stream of {}: one Server-Sent Event (`data:` JSON) per message, or one JSON line per message with `Accept: application/x-ndjson`. A failure ends the stream with `event: error` (SSE) or a last line `{{\"error\": ...}}` (NDJSON) carrying the error body.",
                output.full_name()
            ),
            "content": {
                "text/event-stream": { "schema": { "type": "string" } },
                "application/x-ndjson": { "schema": item },
            },
        })
    } else {
        let schema = match &route.response_body {
            Some(field) => schemas.field(field),
            None => schemas.message(&output),
        };
        json!({
            "description": format!("{} as JSON", output.full_name()),
            "content": { "application/json": { "schema": schema } },
        })
    };
    json!({ "200": ok, "default": error })
}
