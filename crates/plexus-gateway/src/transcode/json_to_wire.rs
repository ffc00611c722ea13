//! JSON straight to protobuf wire bytes, for direct messages (see
//! [`super::schema`]).
//!
//! It reads the proto3 JSON mapping exactly as the `DynamicMessage` path
//! does (JSON or proto field names, numbers or decimal strings for
//! integers, `"NaN"`/`"Infinity"`, base64 bytes, enum names or numbers,
//! `null` for an unset field) and writes what encoding that message
//! would. It is an accelerator, not a second parser of record: whenever it
//! meets anything it does not handle — a mistake in the body, a field
//! given twice, two members of a oneof — it gives up, and the caller runs
//! the `DynamicMessage` path, which either accepts the body with the same
//! result or names the mistake.

use std::fmt;
use std::str::FromStr;

use prost::encoding::{WireType, encode_key, encode_varint};
use serde::de::{DeserializeSeed, Deserializer, Error, MapAccess, SeqAccess, Visitor};

use super::schema::{Cardinality, Field, Schema, Type};

/// The wire encoding of the JSON `body` as message `index`, or `None` when
/// the `DynamicMessage` path must decide.
pub(crate) fn encode(schema: &Schema, index: usize, body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len());
    let mut de = serde_json::Deserializer::from_slice(body);
    MessageSeed {
        schema,
        index,
        out: &mut out,
    }
    .deserialize(&mut de)
    .ok()?;
    de.end().ok()?;
    Some(out)
}

/// Starts a length-delimited value: one placeholder byte for its length.
fn begin_len(out: &mut Vec<u8>) -> usize {
    out.push(0);
    out.len()
}

/// Ends a length-delimited value begun at `start`, writing its length.
fn end_len(out: &mut Vec<u8>, start: usize) {
    let len = out.len() - start;
    if len < 0x80 {
        out[start - 1] = len as u8;
        return;
    }
    let mut prefix = Vec::with_capacity(10);
    encode_varint(len as u64, &mut prefix);
    out[start - 1] = prefix[0];
    out.splice(start..start, prefix[1..].iter().copied());
}

struct MessageSeed<'s, 'o> {
    schema: &'s Schema,
    index: usize,
    out: &'o mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for MessageSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for MessageSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let message = &self.schema.messages[self.index];
        let mut seen: u128 = 0;
        let mut oneofs: u128 = 0;
        while let Some(i) = map.next_key_seed(KeySeed(message))? {
            let bit = 1u128 << i;
            if seen & bit != 0 {
                return Err(A::Error::custom("field given twice"));
            }
            seen |= bit;
            let field = &message.fields[i];
            let set = match field.cardinality {
                Cardinality::Single { presence } => map.next_value_seed(Optional(SingleSeed {
                    schema: self.schema,
                    field,
                    presence,
                    out: self.out,
                }))?,
                Cardinality::Repeated { packed } => map.next_value_seed(Optional(ListSeed {
                    schema: self.schema,
                    field,
                    packed,
                    out: self.out,
                }))?,
                Cardinality::Map => map.next_value_seed(Optional(MapSeed {
                    schema: self.schema,
                    field,
                    out: self.out,
                }))?,
            };
            if set && let Some(oneof) = field.oneof {
                let bit = 1u128 << oneof;
                if oneofs & bit != 0 {
                    return Err(A::Error::custom("two members of a oneof"));
                }
                oneofs |= bit;
            }
        }
        Ok(())
    }
}

/// A field name to the field's index.
struct KeySeed<'m>(&'m super::schema::Message);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed<'_> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: Error>(self, key: &str) -> Result<usize, E> {
        self.0
            .field_by_key(key)
            .ok_or_else(|| E::custom("unknown field"))
    }
}

/// `null` leaves the field unset (`Ok(false)`); anything else is read by
/// the inner seed (`Ok(true)`).
struct Optional<S>(S);

impl<'de, S: DeserializeSeed<'de, Value = ()>> DeserializeSeed<'de> for Optional<S> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de, S: DeserializeSeed<'de, Value = ()>> Visitor<'de> for Optional<S> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a value or null")
    }

    fn visit_none<E: Error>(self) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_unit<E: Error>(self) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        self.0.deserialize(deserializer).map(|()| true)
    }
}

/// One value of a singular field, with its key; a default value of a
/// field without presence is not written, as encoding skips it.
struct SingleSeed<'s, 'o> {
    schema: &'s Schema,
    field: &'s Field,
    presence: bool,
    out: &'o mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for SingleSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        let keep_default = self.presence;
        write_value(
            self.schema,
            self.field.ty,
            Some(self.field.number),
            keep_default,
            deserializer,
            self.out,
        )
    }
}

struct ListSeed<'s, 'o> {
    schema: &'s Schema,
    field: &'s Field,
    packed: bool,
    out: &'o mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for ListSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ListSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let ty = self.field.ty;
        if self.packed && ty.packable() {
            let key_at = self.out.len();
            encode_key(self.field.number, WireType::LengthDelimited, self.out);
            let start = begin_len(self.out);
            while seq
                .next_element_seed(ElementSeed {
                    schema: self.schema,
                    ty,
                    number: None,
                    out: self.out,
                })?
                .is_some()
            {}
            if self.out.len() == start {
                self.out.truncate(key_at);
            } else {
                end_len(self.out, start);
            }
            return Ok(());
        }
        while seq
            .next_element_seed(ElementSeed {
                schema: self.schema,
                ty,
                number: Some(self.field.number),
                out: self.out,
            })?
            .is_some()
        {}
        Ok(())
    }
}

/// One element of a list or one map value: always written, never `null`.
struct ElementSeed<'s, 'o> {
    schema: &'s Schema,
    ty: Type,
    number: Option<u32>,
    out: &'o mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for ElementSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        write_value(
            self.schema,
            self.ty,
            self.number,
            true,
            deserializer,
            self.out,
        )
    }
}

struct MapSeed<'s, 'o> {
    schema: &'s Schema,
    field: &'s Field,
    out: &'o mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for MapSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MapSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Type::Message(entry) = self.field.ty else {
            return Err(A::Error::custom("a map field without an entry message"));
        };
        let entry = &self.schema.messages[entry];
        let (Some(key), Some(value)) = (entry.field_by_number(1), entry.field_by_number(2)) else {
            return Err(A::Error::custom("a map entry without key or value"));
        };
        let (key_ty, value_ty) = (entry.fields[key].ty, entry.fields[value].ty);
        loop {
            let key_at = self.out.len();
            encode_key(self.field.number, WireType::LengthDelimited, self.out);
            let start = begin_len(self.out);
            if map
                .next_key_seed(MapKeySeed {
                    ty: key_ty,
                    out: self.out,
                })?
                .is_none()
            {
                // No more entries: take back the entry just begun.
                self.out.truncate(key_at);
                return Ok(());
            }
            map.next_value_seed(ElementSeed {
                schema: self.schema,
                ty: value_ty,
                number: Some(2),
                out: self.out,
            })?;
            end_len(self.out, start);
        }
    }
}

/// A map key (always a JSON string) parsed as the key type and written as
/// field 1 of the entry.
struct MapKeySeed<'o> {
    ty: Type,
    out: &'o mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for MapKeySeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for MapKeySeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map key")
    }

    fn visit_str<E: Error>(self, key: &str) -> Result<(), E> {
        let out = self.out;
        let scalar = match self.ty {
            Type::String => {
                encode_key(1, WireType::LengthDelimited, out);
                encode_varint(key.len() as u64, out);
                out.extend_from_slice(key.as_bytes());
                return Ok(());
            }
            Type::Bool => Scalar::Bool(bool::from_str(key).map_err(E::custom)?),
            Type::Int32 | Type::Sint32 | Type::Sfixed32 => {
                Scalar::I32(i32::from_str(key).map_err(E::custom)?)
            }
            Type::Int64 | Type::Sint64 | Type::Sfixed64 => {
                Scalar::I64(i64::from_str(key).map_err(E::custom)?)
            }
            Type::Uint32 | Type::Fixed32 => Scalar::U32(u32::from_str(key).map_err(E::custom)?),
            Type::Uint64 | Type::Fixed64 => Scalar::U64(u64::from_str(key).map_err(E::custom)?),
            _ => return Err(E::custom("not a map key type")),
        };
        write_scalar(self.ty, Some(1), scalar, out);
        Ok(())
    }
}

/// A parsed scalar value.
#[derive(Debug, Clone, Copy)]
enum Scalar {
    F64(f64),
    F32(f32),
    I32(i32),
    I64(i64),
    U32(u32),
    U64(u64),
    Bool(bool),
}

impl Scalar {
    fn is_zero(self) -> bool {
        match self {
            Scalar::F64(v) => v == 0.0,
            Scalar::F32(v) => v == 0.0,
            Scalar::I32(v) => v == 0,
            Scalar::I64(v) => v == 0,
            Scalar::U32(v) => v == 0,
            Scalar::U64(v) => v == 0,
            Scalar::Bool(v) => !v,
        }
    }
}

/// Writes one value of type `ty`, with its key when `number` is given.
fn write_value<'de, D: Deserializer<'de>>(
    schema: &Schema,
    ty: Type,
    number: Option<u32>,
    keep_default: bool,
    deserializer: D,
    out: &mut Vec<u8>,
) -> Result<(), D::Error> {
    let scalar = match ty {
        Type::Double => Scalar::F64(deserializer.deserialize_any(DoubleVisitor)?),
        Type::Float => Scalar::F32(deserializer.deserialize_any(FloatVisitor)?),
        Type::Int32 | Type::Sint32 | Type::Sfixed32 => {
            Scalar::I32(deserializer.deserialize_any(IntVisitor::<i32>::new())?)
        }
        Type::Int64 | Type::Sint64 | Type::Sfixed64 => {
            Scalar::I64(deserializer.deserialize_any(IntVisitor::<i64>::new())?)
        }
        Type::Uint32 | Type::Fixed32 => {
            Scalar::U32(deserializer.deserialize_any(IntVisitor::<u32>::new())?)
        }
        Type::Uint64 | Type::Fixed64 => {
            Scalar::U64(deserializer.deserialize_any(IntVisitor::<u64>::new())?)
        }
        Type::Bool => Scalar::Bool(deserializer.deserialize_any(BoolVisitor)?),
        Type::Enum(e) => {
            let number = deserializer.deserialize_any(EnumVisitor(&schema.enums[e]))?;
            let default = schema.enums[e].values.first().map_or(0, |v| v.1);
            if !keep_default && number == default {
                return Ok(());
            }
            Scalar::I32(number)
        }
        Type::String | Type::Bytes => {
            return deserializer.deserialize_str(BytesWriter {
                base64: ty == Type::Bytes,
                number,
                keep_default,
                out,
            });
        }
        Type::Message(index) => {
            if let Some(number) = number {
                encode_key(number, WireType::LengthDelimited, out);
            }
            let start = begin_len(out);
            MessageSeed { schema, index, out }.deserialize(deserializer)?;
            end_len(out, start);
            return Ok(());
        }
    };
    if !keep_default && scalar.is_zero() {
        return Ok(());
    }
    write_scalar(ty, number, scalar, out);
    Ok(())
}

fn write_scalar(ty: Type, number: Option<u32>, scalar: Scalar, out: &mut Vec<u8>) {
    if let Some(number) = number {
        encode_key(number, ty.wire_type(), out);
    }
    match (ty, scalar) {
        (Type::Double, Scalar::F64(v)) => out.extend_from_slice(&v.to_le_bytes()),
        (Type::Float, Scalar::F32(v)) => out.extend_from_slice(&v.to_le_bytes()),
        (Type::Sfixed32, Scalar::I32(v)) => out.extend_from_slice(&v.to_le_bytes()),
        (Type::Sfixed64, Scalar::I64(v)) => out.extend_from_slice(&v.to_le_bytes()),
        (Type::Fixed32, Scalar::U32(v)) => out.extend_from_slice(&v.to_le_bytes()),
        (Type::Fixed64, Scalar::U64(v)) => out.extend_from_slice(&v.to_le_bytes()),
        (Type::Sint32, Scalar::I32(v)) => encode_varint(((v << 1) ^ (v >> 31)) as u32 as u64, out),
        (Type::Sint64, Scalar::I64(v)) => encode_varint(((v << 1) ^ (v >> 63)) as u64, out),
        (_, Scalar::I32(v)) => encode_varint(i64::from(v) as u64, out),
        (_, Scalar::I64(v)) => encode_varint(v as u64, out),
        (_, Scalar::U32(v)) => encode_varint(u64::from(v), out),
        (_, Scalar::U64(v)) => encode_varint(v, out),
        (_, Scalar::Bool(v)) => encode_varint(u64::from(v), out),
        (_, Scalar::F64(_) | Scalar::F32(_)) => unreachable!("floats are only read for floats"),
    }
}

/// Writes a string, or a base64 string decoded to bytes.
struct BytesWriter<'o> {
    base64: bool,
    number: Option<u32>,
    keep_default: bool,
    out: &'o mut Vec<u8>,
}

impl Visitor<'_> for BytesWriter<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: Error>(self, v: &str) -> Result<(), E> {
        let decoded;
        let bytes = if self.base64 {
            decoded = decode_base64(v).ok_or_else(|| E::custom("invalid base64"))?;
            &decoded[..]
        } else {
            v.as_bytes()
        };
        if bytes.is_empty() && !self.keep_default {
            return Ok(());
        }
        if let Some(number) = self.number {
            encode_key(number, WireType::LengthDelimited, self.out);
        }
        encode_varint(bytes.len() as u64, self.out);
        self.out.extend_from_slice(bytes);
        Ok(())
    }
}

/// Standard base64, or URL-safe when it has `-` or `_`; padding optional.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    use base64::alphabet;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const CONFIG: GeneralPurposeConfig = GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent);
    const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, CONFIG);
    const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, CONFIG);
    match STANDARD.decode(text) {
        Ok(bytes) => Some(bytes),
        Err(base64::DecodeError::InvalidByte(_, b'-' | b'_')) => URL_SAFE.decode(text).ok(),
        Err(_) => None,
    }
}

struct DoubleVisitor;

impl Visitor<'_> for DoubleVisitor {
    type Value = f64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number")
    }

    fn visit_f64<E: Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }

    fn visit_i64<E: Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_u64<E: Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_str<E: Error>(self, v: &str) -> Result<f64, E> {
        match f64::from_str(v) {
            Ok(value) => Ok(value),
            Err(_) if v == "Infinity" => Ok(f64::INFINITY),
            Err(_) if v == "-Infinity" => Ok(f64::NEG_INFINITY),
            Err(_) if v == "NaN" => Ok(f64::NAN),
            Err(e) => Err(E::custom(e)),
        }
    }
}

struct FloatVisitor;

impl Visitor<'_> for FloatVisitor {
    type Value = f32;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number")
    }

    fn visit_f64<E: Error>(self, v: f64) -> Result<f32, E> {
        if v < f64::from(f32::MIN) || v > f64::from(f32::MAX) {
            Err(E::custom("float value out of range"))
        } else {
            Ok(v as f32)
        }
    }

    fn visit_i64<E: Error>(self, v: i64) -> Result<f32, E> {
        Ok(v as f32)
    }

    fn visit_u64<E: Error>(self, v: u64) -> Result<f32, E> {
        Ok(v as f32)
    }

    fn visit_str<E: Error>(self, v: &str) -> Result<f32, E> {
        match f32::from_str(v) {
            Ok(value) => Ok(value),
            Err(_) if v == "Infinity" => Ok(f32::INFINITY),
            Err(_) if v == "-Infinity" => Ok(f32::NEG_INFINITY),
            Err(_) if v == "NaN" => Ok(f32::NAN),
            Err(e) => Err(E::custom(e)),
        }
    }
}

/// An integer of type `T` from a JSON number (integral, in range) or a
/// decimal string.
struct IntVisitor<T>(std::marker::PhantomData<T>);

impl<T> IntVisitor<T> {
    fn new() -> Self {
        IntVisitor(std::marker::PhantomData)
    }
}

/// The integer types a JSON field may hold, with their `f64` range as the
/// `DynamicMessage` path checks it.
trait Integer: FromStr + TryFrom<i64> + TryFrom<u64> + Copy {
    const MIN: f64;
    const MAX: f64;
    fn from_f64(v: f64) -> Self;
}

macro_rules! integer {
    ($($t:ty),*) => {$(
        impl Integer for $t {
            const MIN: f64 = <$t>::MIN as f64;
            const MAX: f64 = <$t>::MAX as f64;
            fn from_f64(v: f64) -> Self {
                v as $t
            }
        }
    )*};
}

integer!(i32, i64, u32, u64);

impl<T: Integer> Visitor<'_> for IntVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an integer or a decimal string")
    }

    fn visit_str<E: Error>(self, v: &str) -> Result<T, E> {
        v.parse().map_err(|_| E::custom("not an integer"))
    }

    fn visit_i64<E: Error>(self, v: i64) -> Result<T, E> {
        T::try_from(v).map_err(|_| E::custom("out of range"))
    }

    fn visit_u64<E: Error>(self, v: u64) -> Result<T, E> {
        T::try_from(v).map_err(|_| E::custom("out of range"))
    }

    fn visit_f64<E: Error>(self, v: f64) -> Result<T, E> {
        if v.fract() != 0.0 {
            return Err(E::custom("expected integer value"));
        }
        if v < T::MIN || v > T::MAX {
            return Err(E::custom("float value out of range"));
        }
        Ok(T::from_f64(v))
    }
}

struct BoolVisitor;

impl Visitor<'_> for BoolVisitor {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a boolean")
    }

    fn visit_bool<E: Error>(self, v: bool) -> Result<bool, E> {
        Ok(v)
    }
}

struct EnumVisitor<'e>(&'e super::schema::Enum);

impl Visitor<'_> for EnumVisitor<'_> {
    type Value = i32;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an enum name or number")
    }

    fn visit_str<E: Error>(self, v: &str) -> Result<i32, E> {
        self.0
            .number(v)
            .ok_or_else(|| E::custom("unknown enum value"))
    }

    fn visit_i64<E: Error>(self, v: i64) -> Result<i32, E> {
        i32::try_from(v).map_err(E::custom)
    }

    fn visit_u64<E: Error>(self, v: u64) -> Result<i32, E> {
        i32::try_from(v).map_err(E::custom)
    }
}
