//! The proto3 JSON mapping both ways, with errors that name the field.
//!
//! Input accepts JSON (camelCase) and proto field names and rejects unknown
//! fields; output uses JSON names, int64 as strings and enums as names.
//!
//! Two paths give the same result. Unary calls of *direct* messages (see
//! [`schema`]) are transcoded straight between JSON and protobuf wire
//! bytes ([`json_to_wire`], [`wire_to_json`]); everything else, and any
//! body the direct path gives up on (including every mistake, so that
//! errors are always named the same way), goes through prost-reflect's
//! `DynamicMessage`.

use prost_reflect::{
    DeserializeOptions, DynamicMessage, FieldDescriptor, MessageDescriptor, ReflectMessage,
    SerializeOptions,
};
use serde_json::Value as Json;

pub(crate) mod json_to_wire;
pub(crate) mod schema;
pub(crate) mod wire_to_json;

#[cfg(test)]
mod tests;

use crate::http_error::ApiError;

/// Reads a whole request message from a JSON body.
pub(crate) fn message_from_json(
    desc: MessageDescriptor,
    body: &[u8],
) -> Result<DynamicMessage, ApiError> {
    from_json(desc, body, "")
}

/// Reads one top-level field of `desc` from a JSON body: a message field
/// reads the body as that message, any other field as its JSON value.
pub(crate) fn field_from_json(
    desc: &MessageDescriptor,
    field: &FieldDescriptor,
    body: &[u8],
) -> Result<prost_reflect::Value, ApiError> {
    if let prost_reflect::Kind::Message(inner) = field.kind()
        && !field.is_list()
        && !field.is_map()
    {
        let message = from_json(inner, body, field.name())?;
        return Ok(prost_reflect::Value::Message(message));
    }
    let value: Json = serde_json::from_slice(body).map_err(|e| syntax(&e))?;
    let wrapped = serde_json::json!({ field.json_name(): value });
    let bytes = serde_json::to_vec(&wrapped).unwrap_or_default();
    let mut message = from_json(desc.clone(), &bytes, "")?;
    Ok(message
        .take_field(field)
        .unwrap_or_else(|| prost_reflect::Value::default_value_for_field(field)))
}

fn from_json(
    desc: MessageDescriptor,
    body: &[u8],
    prefix: &str,
) -> Result<DynamicMessage, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let mut track = serde_path_to_error::Track::new();
    let result = DynamicMessage::deserialize_with_options(
        desc,
        serde_path_to_error::Deserializer::new(&mut de, &mut track),
        &DeserializeOptions::new().deny_unknown_fields(true),
    );
    let message = match result {
        Ok(message) => message,
        Err(e) => {
            let path = track.path().to_string();
            return Err(data_error(&e, &join(prefix, &path)));
        }
    };
    de.end().map_err(|e| syntax(&e))?;
    Ok(message)
}

fn join(prefix: &str, path: &str) -> String {
    let path = if path == "." { "" } else { path };
    match (prefix.is_empty(), path.is_empty()) {
        (true, _) => path.to_owned(),
        (false, true) => prefix.to_owned(),
        (false, false) if path.starts_with('[') => format!("{prefix}{path}"),
        (false, false) => format!("{prefix}.{path}"),
    }
}

fn syntax(e: &serde_json::Error) -> ApiError {
    ApiError::bad_request(format!("invalid JSON: {e}"))
}

fn data_error(e: &serde_json::Error, path: &str) -> ApiError {
    use serde_json::error::Category;
    if matches!(
        e.classify(),
        Category::Syntax | Category::Eof | Category::Io
    ) {
        return syntax(e);
    }
    let text = e.to_string();
    if let Some(rest) = text.strip_prefix("unrecognized field name '")
        && let Some(end) = rest.find('\'')
    {
        let name = &rest[..end];
        let field = join(path, name);
        let place = if path.is_empty() {
            String::new()
        } else {
            format!(" in `{path}`")
        };
        return ApiError::bad_field(
            &field,
            format!(
                "unknown field `{name}`{place}{}; field names are the proto name or its lowerCamelCase JSON name",
                location(e)
            ),
        );
    }
    if path.is_empty() {
        return ApiError::bad_request(format!("invalid request body: {text}"));
    }
    ApiError::bad_field(path, format!("invalid value for field `{path}`: {text}"))
}

fn location(e: &serde_json::Error) -> String {
    if e.line() == 0 {
        String::new()
    } else {
        format!(" (at line {} column {})", e.line(), e.column())
    }
}

/// Options for writing responses.
pub(crate) fn serialize_options(emit_unpopulated: bool) -> SerializeOptions {
    SerializeOptions::new().skip_default_fields(!emit_unpopulated)
}

/// Writes a response message (or one field of it) as JSON.
pub(crate) fn message_to_json(
    message: &DynamicMessage,
    field: Option<&FieldDescriptor>,
    options: &SerializeOptions,
) -> Result<Vec<u8>, ApiError> {
    let internal = |e: serde_json::Error| {
        ApiError::new(
            tonic::Code::Internal,
            format!("cannot write the response as JSON: {e}"),
        )
    };
    let Some(field) = field else {
        let mut out = Vec::with_capacity(128);
        message
            .serialize_with_options(&mut serde_json::Serializer::new(&mut out), options)
            .map_err(internal)?;
        return Ok(out);
    };
    let with_defaults = options.clone().skip_default_fields(false);
    let mut only = DynamicMessage::new(message.descriptor());
    only.set_field(field, message.get_field(field).into_owned());
    let whole = only
        .serialize_with_options(serde_json::value::Serializer, &with_defaults)
        .map_err(internal)?;
    let value = whole.get(field.json_name()).cloned().unwrap_or(Json::Null);
    serde_json::to_vec(&value).map_err(internal)
}
