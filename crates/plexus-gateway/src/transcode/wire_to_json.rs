//! Protobuf wire bytes straight to JSON, for direct messages (see
//! [`super::schema`]).
//!
//! It writes what the `DynamicMessage` path writes for the same bytes:
//! fields in number order under their JSON names, 64-bit integers as
//! strings, enums by name (unknown numbers as numbers), bytes as standard
//! base64, `"NaN"`/`"Infinity"`, defaults left out unless unpopulated
//! fields are emitted, unknown fields ignored. Like
//! [`super::json_to_wire`] it gives up on anything unusual — bytes that
//! are not a valid message, a singular message field or a oneof given
//! twice, a map key given twice — and the caller then takes the
//! `DynamicMessage` path.

use base64::Engine as _;
use prost::encoding::{WireType, decode_key, decode_varint};
use serde::ser::{Error, Serialize, SerializeMap, SerializeSeq, Serializer};

use super::schema::{Cardinality, Message, Schema, Type};

/// The JSON of the wire bytes `bytes` of message `index`, or `None` when
/// the `DynamicMessage` path must decide.
pub(crate) fn write(
    schema: &Schema,
    index: usize,
    bytes: &[u8],
    emit_unpopulated: bool,
) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len() * 2 + 16);
    let view = View {
        schema,
        index,
        bytes,
        emit_unpopulated,
    };
    view.serialize(&mut serde_json::Serializer::new(&mut out))
        .ok()?;
    Some(out)
}

/// One message's wire bytes, serialized as its JSON object.
struct View<'a> {
    schema: &'a Schema,
    index: usize,
    bytes: &'a [u8],
    emit_unpopulated: bool,
}

/// One field occurrence on the wire: the field's index and its value.
#[derive(Debug, Clone, Copy)]
struct Occurrence<'a> {
    field: usize,
    wire_type: WireType,
    value: &'a [u8],
}

/// Splits `bytes` into field occurrences (unknown fields dropped), each
/// checked against its field's wire type.
fn scan<'a>(message: &Message, mut bytes: &'a [u8]) -> Result<Vec<Occurrence<'a>>, &'static str> {
    let mut found = Vec::with_capacity(message.fields.len());
    while !bytes.is_empty() {
        let (number, wire_type) = decode_key(&mut bytes).map_err(|_| "bad key")?;
        let value = take_value(&mut bytes, wire_type)?;
        let Some(field) = message.field_by_number(number) else {
            continue;
        };
        let f = &message.fields[field];
        let expected = match f.cardinality {
            Cardinality::Map => WireType::LengthDelimited,
            _ => f.ty.wire_type(),
        };
        let packed = matches!(f.cardinality, Cardinality::Repeated { .. })
            && f.ty.packable()
            && wire_type == WireType::LengthDelimited;
        if wire_type != expected && !packed {
            return Err("wire type does not match the field");
        }
        found.push(Occurrence {
            field,
            wire_type,
            value,
        });
    }
    Ok(found)
}

/// Takes one value of `wire_type` off the front of `bytes`.
fn take_value<'a>(bytes: &mut &'a [u8], wire_type: WireType) -> Result<&'a [u8], &'static str> {
    let len = match wire_type {
        WireType::Varint => {
            let before = *bytes;
            decode_varint(bytes).map_err(|_| "bad varint")?;
            return Ok(&before[..before.len() - bytes.len()]);
        }
        WireType::SixtyFourBit => 8,
        WireType::ThirtyTwoBit => 4,
        WireType::LengthDelimited => {
            let len = decode_varint(bytes).map_err(|_| "bad length")?;
            usize::try_from(len).map_err(|_| "bad length")?
        }
        WireType::StartGroup | WireType::EndGroup => return Err("groups are not read here"),
    };
    if bytes.len() < len {
        return Err("truncated value");
    }
    let (value, rest) = bytes.split_at(len);
    *bytes = rest;
    Ok(value)
}

impl Serialize for View<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let message = &self.schema.messages[self.index];
        let mut found = scan(message, self.bytes).map_err(S::Error::custom)?;
        // Field order, wire order within a field.
        found.sort_by_key(|o| o.field);
        let mut oneofs: u128 = 0;
        let mut map = serializer.serialize_map(None)?;
        let mut rest = &found[..];
        for (index, field) in message.fields.iter().enumerate() {
            let count = rest.iter().take_while(|o| o.field == index).count();
            let (mine, after) = rest.split_at(count);
            rest = after;
            if !mine.is_empty()
                && let Some(oneof) = field.oneof
            {
                if oneofs & (1u128 << oneof) != 0 {
                    return Err(S::Error::custom("two members of a oneof"));
                }
                oneofs |= 1u128 << oneof;
            }
            let name = &*field.json_name;
            match field.cardinality {
                Cardinality::Single { presence } => {
                    let Some(last) = mine.last() else {
                        if self.emit_unpopulated && !presence {
                            map.serialize_entry(name, &self.value(field.ty, &[], true))?;
                        }
                        continue;
                    };
                    if mine.len() > 1 && matches!(field.ty, Type::Message(_)) {
                        return Err(S::Error::custom("a message field given twice"));
                    }
                    let value = self.value(field.ty, last.value, false);
                    if presence || self.emit_unpopulated || !value.is_default()? {
                        map.serialize_entry(name, &value)?;
                    }
                }
                Cardinality::Repeated { .. } => {
                    if mine.is_empty() && !self.emit_unpopulated {
                        continue;
                    }
                    map.serialize_entry(
                        name,
                        &List {
                            view: self,
                            ty: field.ty,
                            occurrences: mine,
                        },
                    )?;
                }
                Cardinality::Map => {
                    if mine.is_empty() && !self.emit_unpopulated {
                        continue;
                    }
                    let Type::Message(entry) = field.ty else {
                        return Err(S::Error::custom("a map without an entry message"));
                    };
                    map.serialize_entry(
                        name,
                        &Entries {
                            view: self,
                            entry,
                            occurrences: mine,
                        },
                    )?;
                }
            }
        }
        map.end()
    }
}

impl<'a> View<'a> {
    /// One value of `ty` held in `bytes` (`absent`: the field's default).
    fn value(&self, ty: Type, bytes: &'a [u8], absent: bool) -> Value<'a> {
        Value {
            schema: self.schema,
            ty,
            bytes,
            absent,
            emit_unpopulated: self.emit_unpopulated,
        }
    }
}

/// One value on the wire (a varint's bytes, a fixed value's bytes, or a
/// length-delimited value's content), serialized as JSON.
struct Value<'a> {
    schema: &'a Schema,
    ty: Type,
    bytes: &'a [u8],
    /// The field is absent: serialize its default.
    absent: bool,
    emit_unpopulated: bool,
}

/// A decoded scalar.
enum Scalar<'a> {
    I32(i32),
    I64(i64),
    U32(u32),
    U64(u64),
    F32(f32),
    F64(f64),
    Bool(bool),
    Enum(i32),
    Str(&'a str),
    Bytes(&'a [u8]),
}

impl<'a> Value<'a> {
    fn scalar(&self) -> Result<Option<Scalar<'a>>, &'static str> {
        let bytes = self.bytes;
        if self.absent {
            return Ok(Some(match self.ty {
                Type::Int32 | Type::Sint32 | Type::Sfixed32 => Scalar::I32(0),
                Type::Int64 | Type::Sint64 | Type::Sfixed64 => Scalar::I64(0),
                Type::Uint32 | Type::Fixed32 => Scalar::U32(0),
                Type::Uint64 | Type::Fixed64 => Scalar::U64(0),
                Type::Float => Scalar::F32(0.0),
                Type::Double => Scalar::F64(0.0),
                Type::Bool => Scalar::Bool(false),
                Type::Enum(e) => {
                    Scalar::Enum(self.schema.enums[e].values.first().map_or(0, |v| v.1))
                }
                Type::String => Scalar::Str(""),
                Type::Bytes => Scalar::Bytes(&[]),
                Type::Message(_) => return Ok(None),
            }));
        }
        let varint = || {
            let mut b = bytes;
            decode_varint(&mut b).map_err(|_| "bad varint")
        };
        let fixed4 = || <[u8; 4]>::try_from(bytes).map_err(|_| "bad fixed32");
        let fixed8 = || <[u8; 8]>::try_from(bytes).map_err(|_| "bad fixed64");
        Ok(Some(match self.ty {
            Type::Int32 => Scalar::I32(varint()? as i32),
            Type::Int64 => Scalar::I64(varint()? as i64),
            Type::Uint32 => Scalar::U32(varint()? as u32),
            Type::Uint64 => Scalar::U64(varint()?),
            Type::Sint32 => {
                let v = varint()? as u32;
                Scalar::I32(((v >> 1) as i32) ^ -((v & 1) as i32))
            }
            Type::Sint64 => {
                let v = varint()?;
                Scalar::I64(((v >> 1) as i64) ^ -((v & 1) as i64))
            }
            Type::Bool => Scalar::Bool(varint()? != 0),
            Type::Enum(_) => Scalar::Enum(varint()? as i32),
            Type::Fixed32 => Scalar::U32(u32::from_le_bytes(fixed4()?)),
            Type::Sfixed32 => Scalar::I32(i32::from_le_bytes(fixed4()?)),
            Type::Float => Scalar::F32(f32::from_le_bytes(fixed4()?)),
            Type::Fixed64 => Scalar::U64(u64::from_le_bytes(fixed8()?)),
            Type::Sfixed64 => Scalar::I64(i64::from_le_bytes(fixed8()?)),
            Type::Double => Scalar::F64(f64::from_le_bytes(fixed8()?)),
            Type::String => Scalar::Str(std::str::from_utf8(bytes).map_err(|_| "invalid UTF-8")?),
            Type::Bytes => Scalar::Bytes(bytes),
            Type::Message(_) => return Ok(None),
        }))
    }

    /// Whether the value is its type's default (a field without presence
    /// holding it is left out).
    fn is_default<E: Error>(&self) -> Result<bool, E> {
        let default = match self.scalar().map_err(E::custom)? {
            None => false,
            Some(Scalar::I32(v)) => v == 0,
            Some(Scalar::I64(v)) => v == 0,
            Some(Scalar::U32(v)) => v == 0,
            Some(Scalar::U64(v)) => v == 0,
            Some(Scalar::F32(v)) => v == 0.0,
            Some(Scalar::F64(v)) => v == 0.0,
            Some(Scalar::Bool(v)) => !v,
            Some(Scalar::Enum(v)) => {
                let Type::Enum(e) = self.ty else {
                    return Ok(false);
                };
                Some(v) == self.schema.enums[e].values.first().map(|v| v.1)
            }
            Some(Scalar::Str(v)) => v.is_empty(),
            Some(Scalar::Bytes(v)) => v.is_empty(),
        };
        Ok(default)
    }
}

impl Serialize for Value<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Some(scalar) = self.scalar().map_err(S::Error::custom)? else {
            let Type::Message(index) = self.ty else {
                return Err(S::Error::custom("not a message"));
            };
            return View {
                schema: self.schema,
                index,
                bytes: self.bytes,
                emit_unpopulated: self.emit_unpopulated,
            }
            .serialize(serializer);
        };
        match scalar {
            Scalar::I32(v) => serializer.serialize_i32(v),
            Scalar::U32(v) => serializer.serialize_u32(v),
            Scalar::I64(v) => serializer.collect_str(&v),
            Scalar::U64(v) => serializer.collect_str(&v),
            Scalar::F32(v) if v.is_finite() => serializer.serialize_f32(v),
            Scalar::F64(v) if v.is_finite() => serializer.serialize_f64(v),
            Scalar::F32(v) => serializer.serialize_str(non_finite(f64::from(v))),
            Scalar::F64(v) => serializer.serialize_str(non_finite(v)),
            Scalar::Bool(v) => serializer.serialize_bool(v),
            Scalar::Enum(v) => {
                let Type::Enum(e) = self.ty else {
                    return Err(S::Error::custom("not an enum"));
                };
                match self.schema.enums[e].name(v) {
                    Some(name) => serializer.serialize_str(name),
                    None => serializer.serialize_i32(v),
                }
            }
            Scalar::Str(v) => serializer.serialize_str(v),
            Scalar::Bytes(v) => {
                serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
            }
        }
    }
}

fn non_finite(v: f64) -> &'static str {
    if v.is_nan() {
        "NaN"
    } else if v > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

/// A repeated field's values, packed or not, in wire order.
struct List<'a, 'v> {
    view: &'v View<'a>,
    ty: Type,
    occurrences: &'v [Occurrence<'a>],
}

impl Serialize for List<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(None)?;
        let element_type = self.ty.wire_type();
        for occurrence in self.occurrences {
            if occurrence.wire_type == element_type {
                seq.serialize_element(&self.view.value(self.ty, occurrence.value, false))?;
                continue;
            }
            // Packed: the values one after another.
            let mut packed = occurrence.value;
            while !packed.is_empty() {
                let value = take_value(&mut packed, element_type).map_err(S::Error::custom)?;
                seq.serialize_element(&self.view.value(self.ty, value, false))?;
            }
        }
        seq.end()
    }
}

/// A map field's entries, each key at most once.
struct Entries<'a, 'v> {
    view: &'v View<'a>,
    entry: usize,
    occurrences: &'v [Occurrence<'a>],
}

impl Serialize for Entries<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let schema = self.view.schema;
        let entry = &schema.messages[self.entry];
        let (Some(k), Some(v)) = (entry.field_by_number(1), entry.field_by_number(2)) else {
            return Err(S::Error::custom("a map entry without key or value"));
        };
        let (key_ty, value_ty) = (entry.fields[k].ty, entry.fields[v].ty);
        let mut pairs = Vec::with_capacity(self.occurrences.len());
        for occurrence in self.occurrences {
            let (mut key, mut value) = (None, None);
            for o in scan(entry, occurrence.value).map_err(S::Error::custom)? {
                if o.field == k {
                    key = Some(o.value);
                } else if o.field == v {
                    if value.is_some() && matches!(value_ty, Type::Message(_)) {
                        return Err(S::Error::custom("a map value given twice"));
                    }
                    value = Some(o.value);
                }
            }
            pairs.push((key, value));
        }
        // Keys compared as written, as a decoded map would hold them.
        let mut written = Vec::with_capacity(pairs.len());
        for (key, value) in pairs {
            let key = self
                .view
                .value(key_ty, key.unwrap_or_default(), key.is_none());
            let text = key_text(&key).map_err(S::Error::custom)?;
            let value = self
                .view
                .value(value_ty, value.unwrap_or_default(), value.is_none());
            written.push((text, value));
        }
        let mut keys: Vec<&str> = written.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        if keys.windows(2).any(|w| w[0] == w[1]) {
            return Err(S::Error::custom("a map key given twice"));
        }
        let mut map = serializer.serialize_map(Some(written.len()))?;
        for (key, value) in &written {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// A map key as its JSON string.
fn key_text(key: &Value<'_>) -> Result<String, &'static str> {
    Ok(match key.scalar()? {
        Some(Scalar::Str(v)) => v.to_owned(),
        Some(Scalar::Bool(v)) => v.to_string(),
        Some(Scalar::I32(v)) => v.to_string(),
        Some(Scalar::I64(v)) => v.to_string(),
        Some(Scalar::U32(v)) => v.to_string(),
        Some(Scalar::U64(v)) => v.to_string(),
        _ => return Err("not a map key type"),
    })
}
