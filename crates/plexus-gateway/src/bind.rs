//! Setting request fields from text: path variables and query parameters.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, Value};

/// A chain of fields from a request message down to one field.
#[derive(Debug, Clone)]
pub(crate) struct FieldPath {
    pub(crate) fields: Vec<FieldDescriptor>,
}

impl FieldPath {
    /// The path in proto field names, e.g. `book.name`.
    pub(crate) fn proto_name(&self) -> String {
        let names: Vec<&str> = self.fields.iter().map(FieldDescriptor::name).collect();
        names.join(".")
    }

    /// The last field.
    pub(crate) fn leaf(&self) -> &FieldDescriptor {
        self.fields.last().expect("a field path is never empty")
    }

    /// Whether `other` is this path, or inside it, or holds it.
    pub(crate) fn overlaps(&self, other: &FieldPath) -> bool {
        self.fields
            .iter()
            .zip(&other.fields)
            .all(|(a, b)| a.number() == b.number())
    }
}

/// Resolves a dotted path of field names (proto or JSON names) from
/// `message`. Every field but the last must be a singular message.
pub(crate) fn resolve(message: &MessageDescriptor, dotted: &str) -> Result<FieldPath, String> {
    let mut fields = Vec::new();
    let mut current = message.clone();
    let names: Vec<&str> = dotted.split('.').collect();
    for (i, name) in names.iter().enumerate() {
        let field = current
            .get_field_by_name(name)
            .or_else(|| current.get_field_by_json_name(name))
            .ok_or_else(|| format!("{} has no field `{name}`", current.full_name()))?;
        if i + 1 < names.len() {
            if field.is_list() || field.is_map() {
                return Err(format!(
                    "`{}` is repeated; a path can only go through singular messages",
                    field.name()
                ));
            }
            let Kind::Message(inner) = field.kind() else {
                return Err(format!("`{}` is not a message", field.name()));
            };
            current = inner;
        }
        fields.push(field);
    }
    Ok(FieldPath { fields })
}

/// Sets the field at `path` in `message` from `raw`; a repeated field gets
/// `raw` appended.
pub(crate) fn set(message: &mut DynamicMessage, path: &FieldPath, raw: &str) -> Result<(), String> {
    let (leaf, parents) = path
        .fields
        .split_last()
        .expect("a field path is never empty");
    let mut current = message;
    for field in parents {
        current = current
            .get_field_mut(field)
            .as_message_mut()
            .ok_or_else(|| format!("`{}` is not a message", field.name()))?;
    }
    if leaf.is_map() {
        return Err(format!(
            "`{}` is a map; send it in the JSON body",
            path.proto_name()
        ));
    }
    let value = parse(leaf, raw)?;
    if leaf.is_list() {
        if let Some(list) = current.get_field_mut(leaf).as_list_mut() {
            list.push(value);
        }
    } else {
        current.set_field(leaf, value);
    }
    Ok(())
}

/// Parses one value of `field` (a single element for a repeated field).
fn parse(field: &FieldDescriptor, raw: &str) -> Result<Value, String> {
    let number = |what: &str, e: &dyn std::fmt::Display| format!("`{raw}` is not {what}: {e}");
    Ok(match field.kind() {
        Kind::Double => Value::F64(parse_float(raw).map_err(|e| number("a number", &e))?),
        Kind::Float => Value::F32(parse_float(raw).map_err(|e| number("a number", &e))? as f32),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Value::I32(raw.parse().map_err(|e| number("a 32-bit integer", &e))?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            Value::I64(raw.parse().map_err(|e| number("a 64-bit integer", &e))?)
        }
        Kind::Uint32 | Kind::Fixed32 => Value::U32(
            raw.parse()
                .map_err(|e| number("an unsigned 32-bit integer", &e))?,
        ),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(
            raw.parse()
                .map_err(|e| number("an unsigned 64-bit integer", &e))?,
        ),
        Kind::Bool => Value::Bool(match raw {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => return Err(format!("`{raw}` is not a boolean; use true or false")),
        }),
        Kind::String => Value::String(raw.to_owned()),
        Kind::Bytes => Value::Bytes(decode_base64(raw)?.into()),
        Kind::Enum(e) => {
            if let Some(v) = e.get_value_by_name(raw) {
                Value::EnumNumber(v.number())
            } else if let Ok(n) = raw.parse::<i32>() {
                Value::EnumNumber(n)
            } else {
                let names: Vec<String> = e.values().map(|v| v.name().to_owned()).collect();
                let names = names.join(", ");
                return Err(format!(
                    "`{raw}` is not a value of {}; expected one of {names}",
                    e.full_name()
                ));
            }
        }
        Kind::Message(m) => Value::Message(parse_well_known(&m, raw)?),
    })
}

fn parse_float(raw: &str) -> Result<f64, std::num::ParseFloatError> {
    match raw {
        "NaN" => Ok(f64::NAN),
        "Infinity" => Ok(f64::INFINITY),
        "-Infinity" => Ok(f64::NEG_INFINITY),
        _ => raw.parse(),
    }
}

fn decode_base64(raw: &str) -> Result<Vec<u8>, String> {
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(raw).ok())
        .ok_or_else(|| format!("`{raw}` is not base64"))
}

/// A well-known type (Timestamp, Duration, FieldMask, wrappers) from its
/// proto3 JSON text; any other message cannot be given as one value.
fn parse_well_known(message: &MessageDescriptor, raw: &str) -> Result<DynamicMessage, String> {
    if message.package_name() != "google.protobuf" {
        return Err(format!(
            "it is a message ({}); set its fields one by one, e.g. `field.subfield=value`",
            message.full_name()
        ));
    }
    let as_string = serde_json::Value::String(raw.to_owned());
    let first = match DynamicMessage::deserialize(message.clone(), as_string) {
        Ok(m) => return Ok(m),
        Err(e) => e,
    };
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(raw)
        && let Ok(m) = DynamicMessage::deserialize(message.clone(), json)
    {
        return Ok(m);
    }
    Err(format!(
        "`{raw}` is not a valid {}: {first}",
        message.full_name()
    ))
}
