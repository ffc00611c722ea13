//! JSON Schemas (OpenAPI 3.0 dialect) of proto messages under the proto3
//! JSON mapping: int64 as strings, enums as names, bytes as base64, the
//! well-known types in their JSON forms.

use std::collections::BTreeMap;

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Value as Json, json};

use super::comments;

/// The component schemas collected while describing the routes.
#[derive(Debug, Default)]
pub(crate) struct Schemas {
    components: BTreeMap<String, Json>,
}

impl Schemas {
    /// The collected `components/schemas`.
    pub(crate) fn into_components(self) -> serde_json::Map<String, Json> {
        self.components.into_iter().collect()
    }

    /// Adds a hand-written component.
    pub(crate) fn insert(&mut self, name: &str, schema: Json) {
        self.components.insert(name.to_owned(), schema);
    }

    /// A `$ref` to a component.
    pub(crate) fn reference(name: &str) -> Json {
        json!({ "$ref": format!("#/components/schemas/{name}") })
    }

    /// The schema of a message: its well-known JSON form, or a `$ref` to
    /// its component (added, with every message it uses, on first use).
    pub(crate) fn message(&mut self, desc: &MessageDescriptor) -> Json {
        if let Some(known) = well_known(desc) {
            return known;
        }
        let name = desc.full_name().to_owned();
        if !self.components.contains_key(&name) {
            // Placeholder first, so recursive messages terminate.
            self.components.insert(name.clone(), json!({}));
            let mut properties = serde_json::Map::new();
            for field in desc.fields() {
                let mut schema = self.field(&field);
                if let Some(text) = comments(&desc.parent_file(), field.path())
                    && let Json::Object(map) = &mut schema
                {
                    if map.contains_key("$ref") {
                        schema = json!({ "allOf": [schema], "description": text });
                    } else {
                        map.insert("description".to_owned(), Json::String(text));
                    }
                }
                properties.insert(field.json_name().to_owned(), schema);
            }
            let mut schema = json!({ "type": "object", "properties": properties });
            if let Some(text) = comments(&desc.parent_file(), desc.path()) {
                schema["description"] = Json::String(text);
            }
            self.components.insert(name.clone(), schema);
        }
        Self::reference(&name)
    }

    /// The schema of one field's JSON value.
    pub(crate) fn field(&mut self, field: &FieldDescriptor) -> Json {
        if field.is_map() {
            let Kind::Message(entry) = field.kind() else {
                return json!({ "type": "object" });
            };
            let value = entry.map_entry_value_field();
            return json!({
                "type": "object",
                "additionalProperties": self.single(&value.kind()),
            });
        }
        let single = self.single(&field.kind());
        if field.is_list() {
            json!({ "type": "array", "items": single })
        } else {
            single
        }
    }

    /// The schema of one value of `kind`.
    pub(crate) fn single(&mut self, kind: &Kind) -> Json {
        match kind {
            Kind::Double => json!({ "type": "number", "format": "double" }),
            Kind::Float => json!({ "type": "number", "format": "float" }),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
                json!({ "type": "integer", "format": "int32" })
            }
            Kind::Uint32 | Kind::Fixed32 => {
                json!({ "type": "integer", "format": "int64", "minimum": 0, "maximum": u32::MAX })
            }
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
                json!({ "type": "string", "format": "int64", "pattern": "^-?[0-9]+$" })
            }
            Kind::Uint64 | Kind::Fixed64 => {
                json!({ "type": "string", "format": "uint64", "pattern": "^[0-9]+$" })
            }
            Kind::Bool => json!({ "type": "boolean" }),
            Kind::String => json!({ "type": "string" }),
            Kind::Bytes => json!({ "type": "string", "format": "byte" }),
            Kind::Enum(e) => {
                let names: Vec<String> = e.values().map(|v| v.name().to_owned()).collect();
                json!({ "type": "string", "enum": names })
            }
            Kind::Message(m) => self.message(m),
        }
    }
}

/// The JSON form of the well-known types the gateway documents.
fn well_known(desc: &MessageDescriptor) -> Option<Json> {
    let nullable = |schema: Json| {
        let mut schema = schema;
        schema["nullable"] = Json::Bool(true);
        schema
    };
    Some(match desc.full_name() {
        "google.protobuf.Timestamp" => json!({ "type": "string", "format": "date-time" }),
        "google.protobuf.Duration" => {
            json!({ "type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?s$", "example": "1.5s" })
        }
        "google.protobuf.FieldMask" => {
            json!({ "type": "string", "description": "comma-separated lowerCamelCase field paths" })
        }
        "google.protobuf.Empty" => json!({ "type": "object" }),
        "google.protobuf.Struct" => json!({ "type": "object", "additionalProperties": {} }),
        "google.protobuf.Value" => json!({}),
        "google.protobuf.ListValue" => json!({ "type": "array", "items": {} }),
        "google.protobuf.Any" => json!({
            "type": "object",
            "properties": { "@type": { "type": "string" } },
            "additionalProperties": {},
        }),
        "google.protobuf.DoubleValue" => nullable(json!({ "type": "number", "format": "double" })),
        "google.protobuf.FloatValue" => nullable(json!({ "type": "number", "format": "float" })),
        "google.protobuf.Int64Value" => nullable(json!({ "type": "string", "format": "int64" })),
        "google.protobuf.UInt64Value" => nullable(json!({ "type": "string", "format": "uint64" })),
        "google.protobuf.Int32Value" => nullable(json!({ "type": "integer", "format": "int32" })),
        "google.protobuf.UInt32Value" => {
            nullable(json!({ "type": "integer", "format": "int64", "minimum": 0 }))
        }
        "google.protobuf.BoolValue" => nullable(json!({ "type": "boolean" })),
        "google.protobuf.StringValue" => nullable(json!({ "type": "string" })),
        "google.protobuf.BytesValue" => nullable(json!({ "type": "string", "format": "byte" })),
        _ => return None,
    })
}

/// Whether a message is written as one JSON value (so it can be one query
/// parameter).
pub(crate) fn is_scalar_like(desc: &MessageDescriptor) -> bool {
    well_known(desc).is_some_and(|schema| {
        !matches!(
            schema.get("type").and_then(Json::as_str),
            Some("object" | "array") | None
        )
    })
}
