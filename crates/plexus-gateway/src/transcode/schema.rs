//! The descriptors compiled into flat tables for the direct transcoders
//! ([`super::json_to_wire`], [`super::wire_to_json`]).
//!
//! prost-reflect's descriptors are general and reference-counted: every
//! field lookup clones handles, and a `DynamicMessage` is a tree of boxed
//! values. The direct transcoders instead walk JSON and the protobuf wire
//! format side by side using these plain tables, built once when the
//! gateway starts.
//!
//! A message is *direct* when the direct transcoders handle it and
//! everything reachable from it: no well-known type (their JSON forms are
//! special), no group, no extension, no enum alias, at most 128 fields.
//! Anything else takes the `DynamicMessage` path, which gives the same
//! result more slowly.

use std::collections::HashMap;

use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor};

/// The scalar or reference type of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Type {
    Double,
    Float,
    Int32,
    Int64,
    Uint32,
    Uint64,
    Sint32,
    Sint64,
    Fixed32,
    Fixed64,
    Sfixed32,
    Sfixed64,
    Bool,
    String,
    Bytes,
    /// Index into [`Schema::enums`].
    Enum(usize),
    /// Index into [`Schema::messages`].
    Message(usize),
}

impl Type {
    /// The wire type of one value.
    pub(crate) fn wire_type(self) -> prost::encoding::WireType {
        use prost::encoding::WireType;
        match self {
            Type::Double | Type::Fixed64 | Type::Sfixed64 => WireType::SixtyFourBit,
            Type::Float | Type::Fixed32 | Type::Sfixed32 => WireType::ThirtyTwoBit,
            Type::String | Type::Bytes | Type::Message(_) => WireType::LengthDelimited,
            _ => WireType::Varint,
        }
    }

    /// Whether repeated values of this type may be packed.
    pub(crate) fn packable(self) -> bool {
        !matches!(self, Type::String | Type::Bytes | Type::Message(_))
    }
}

/// How many values a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cardinality {
    /// One value; `presence` when an explicitly set default is kept
    /// (messages, `optional`, oneof members, proto2).
    Single { presence: bool },
    /// A list; `packed` when written packed.
    Repeated { packed: bool },
    /// A map; the field's type is its entry message (key 1, value 2).
    Map,
}

#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub(crate) number: u32,
    pub(crate) json_name: Box<str>,
    pub(crate) name: Box<str>,
    pub(crate) ty: Type,
    pub(crate) cardinality: Cardinality,
    /// Index of the (real or synthetic) oneof among the message's oneofs.
    pub(crate) oneof: Option<u8>,
}

#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub(crate) full_name: Box<str>,
    /// In field-number order.
    pub(crate) fields: Vec<Field>,
    /// Whether the direct transcoders handle this message (see the module
    /// documentation).
    pub(crate) direct: bool,
}

impl Message {
    /// The field a JSON key names: its JSON name first, then its proto
    /// name, as the proto3 JSON mapping reads them.
    pub(crate) fn field_by_key(&self, key: &str) -> Option<usize> {
        self.fields
            .iter()
            .position(|f| &*f.json_name == key)
            .or_else(|| self.fields.iter().position(|f| &*f.name == key))
    }

    /// The field with this number.
    pub(crate) fn field_by_number(&self, number: u32) -> Option<usize> {
        self.fields.binary_search_by_key(&number, |f| f.number).ok()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Enum {
    /// (name, number), in declaration order.
    pub(crate) values: Vec<(Box<str>, i32)>,
}

impl Enum {
    pub(crate) fn number(&self, name: &str) -> Option<i32> {
        self.values.iter().find(|(n, _)| &**n == name).map(|v| v.1)
    }

    pub(crate) fn name(&self, number: i32) -> Option<&str> {
        self.values
            .iter()
            .find(|(_, n)| *n == number)
            .map(|v| &*v.0)
    }
}

/// Every message and enum of a descriptor pool, as flat tables.
#[derive(Debug, Clone, Default)]
pub(crate) struct Schema {
    pub(crate) messages: Vec<Message>,
    pub(crate) enums: Vec<Enum>,
    by_name: HashMap<Box<str>, usize>,
}

/// More oneofs than this and a message takes the `DynamicMessage` path.
pub(crate) const MAX_ONEOFS: usize = 128;

/// More fields than this and a message takes the `DynamicMessage` path
/// (the transcoders track fields seen in a 128-bit set).
pub(crate) const MAX_FIELDS: usize = 128;

impl Schema {
    /// Compiles every message and enum of `pool`.
    pub(crate) fn new(pool: &DescriptorPool) -> Self {
        let message_index: HashMap<String, usize> = pool
            .all_messages()
            .enumerate()
            .map(|(i, m)| (m.full_name().to_owned(), i))
            .collect();
        let mut enums = Vec::new();
        let mut enum_index = HashMap::new();
        let mut enum_direct = Vec::new();
        for (i, e) in pool.all_enums().enumerate() {
            enum_index.insert(e.full_name().to_owned(), i);
            let values: Vec<(Box<str>, i32)> =
                e.values().map(|v| (v.name().into(), v.number())).collect();
            let mut numbers: Vec<i32> = values.iter().map(|v| v.1).collect();
            numbers.sort_unstable();
            numbers.dedup();
            enum_direct.push(
                numbers.len() == values.len() && !e.full_name().starts_with("google.protobuf."),
            );
            enums.push(Enum { values });
        }
        let mut messages: Vec<Message> = pool
            .all_messages()
            .map(|m| compile(&m, &message_index, &enum_index, &enum_direct))
            .collect();
        // A message is direct only if every message it reaches is.
        loop {
            let mut changed = false;
            for i in 0..messages.len() {
                if !messages[i].direct {
                    continue;
                }
                let reaches_slow = messages[i]
                    .fields
                    .iter()
                    .any(|f| matches!(f.ty, Type::Message(j) if !messages[j].direct));
                if reaches_slow {
                    messages[i].direct = false;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let by_name = messages
            .iter()
            .enumerate()
            .map(|(i, m)| (m.full_name.clone(), i))
            .collect();
        Schema {
            messages,
            enums,
            by_name,
        }
    }

    /// The index of a direct message, or `None` when `desc` takes the
    /// `DynamicMessage` path.
    pub(crate) fn direct(&self, desc: &MessageDescriptor) -> Option<usize> {
        let index = *self.by_name.get(desc.full_name())?;
        self.messages[index].direct.then_some(index)
    }
}

fn compile(
    desc: &MessageDescriptor,
    messages: &HashMap<String, usize>,
    enums: &HashMap<String, usize>,
    enum_direct: &[bool],
) -> Message {
    let oneofs: Vec<String> = desc.oneofs().map(|o| o.full_name().to_owned()).collect();
    let mut direct = !desc.full_name().starts_with("google.protobuf.")
        && desc.fields().len() <= MAX_FIELDS
        && desc.extensions().len() == 0
        && oneofs.len() <= MAX_ONEOFS;
    let mut fields = Vec::with_capacity(desc.fields().len());
    for field in desc.fields() {
        let Some(ty) = field_type(&field, messages, enums) else {
            direct = false;
            continue;
        };
        if let Type::Enum(e) = ty
            && !enum_direct[e]
        {
            direct = false;
        }
        if field.is_group() {
            direct = false;
        }
        let cardinality = if field.is_map() {
            Cardinality::Map
        } else if field.is_list() {
            Cardinality::Repeated {
                packed: field.is_packed(),
            }
        } else {
            Cardinality::Single {
                presence: field.supports_presence(),
            }
        };
        let oneof = field.containing_oneof().and_then(|o| {
            oneofs
                .iter()
                .position(|name| name == o.full_name())
                .and_then(|i| u8::try_from(i).ok())
        });
        fields.push(Field {
            number: field.number(),
            json_name: field.json_name().into(),
            name: field.name().into(),
            ty,
            cardinality,
            oneof,
        });
    }
    Message {
        full_name: desc.full_name().into(),
        fields,
        direct,
    }
}

fn field_type(
    field: &FieldDescriptor,
    messages: &HashMap<String, usize>,
    enums: &HashMap<String, usize>,
) -> Option<Type> {
    Some(match field.kind() {
        Kind::Double => Type::Double,
        Kind::Float => Type::Float,
        Kind::Int32 => Type::Int32,
        Kind::Int64 => Type::Int64,
        Kind::Uint32 => Type::Uint32,
        Kind::Uint64 => Type::Uint64,
        Kind::Sint32 => Type::Sint32,
        Kind::Sint64 => Type::Sint64,
        Kind::Fixed32 => Type::Fixed32,
        Kind::Fixed64 => Type::Fixed64,
        Kind::Sfixed32 => Type::Sfixed32,
        Kind::Sfixed64 => Type::Sfixed64,
        Kind::Bool => Type::Bool,
        Kind::String => Type::String,
        Kind::Bytes => Type::Bytes,
        Kind::Enum(e) => Type::Enum(*enums.get(e.full_name())?),
        Kind::Message(m) => Type::Message(*messages.get(m.full_name())?),
    })
}
