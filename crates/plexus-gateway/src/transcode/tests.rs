//! The direct transcoders against the `DynamicMessage` path, on random and
//! mutated input: whenever the direct path answers, its answer is the
//! `DynamicMessage` path's; whatever it gives up on, the `DynamicMessage`
//! path decides. Messages from `tests/proto/.../transcode.proto`.

use std::fmt::Write as _;

use base64::Engine as _;
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value as Json;

use super::schema::{Cardinality, Schema, Type};
use super::{json_to_wire, message_from_json, message_to_json, serialize_options, wire_to_json};

const EVERYTHING: &str = "plexus.gateway.test.v1.Everything";

fn pool() -> DescriptorPool {
    let manifest = env!("CARGO_MANIFEST_DIR");
    let files = protox::compile(
        ["plexus/gateway/test/v1/transcode.proto"],
        [format!("{manifest}/tests/proto")],
    )
    .expect("transcode.proto compiles");
    DescriptorPool::from_file_descriptor_set(files).expect("descriptor pool")
}

/// A message as JSON with every field, so that "unset" and "set to its
/// default" differ where the field has presence.
fn full_json(message: &DynamicMessage) -> Json {
    let options = serialize_options(true);
    serde_json::from_slice(&message_to_json(message, None, &options).expect("to JSON"))
        .expect("valid JSON")
}

/// Random JSON text for message `index`, valid or (with probability
/// `mistakes`) holding one kind of mistake or another.
struct Gen<'a> {
    schema: &'a Schema,
    rng: StdRng,
    mistakes: f64,
}

impl Gen<'_> {
    fn mistake(&mut self) -> bool {
        self.rng.random_bool(self.mistakes)
    }

    fn message(&mut self, index: usize, depth: u32, out: &mut String) {
        let message = &self.schema.messages[index];
        out.push('{');
        let mut first = true;
        let count = message.fields.len();
        for i in 0..count {
            if !self.rng.random_bool(if depth == 0 { 0.5 } else { 0.3 }) {
                continue;
            }
            let field = message.fields[i].clone();
            let repeats = if self.mistake() { 2 } else { 1 };
            for _ in 0..repeats {
                if !first {
                    out.push(',');
                }
                first = false;
                let name = if self.rng.random_bool(0.7) {
                    &field.json_name
                } else {
                    &field.name
                };
                write!(out, "{}:", Json::String(name.to_string())).unwrap();
                if self.mistake() {
                    out.push_str("null");
                    continue;
                }
                match field.cardinality {
                    Cardinality::Single { .. } => self.value(field.ty, depth, out),
                    Cardinality::Repeated { .. } => self.list(field.ty, depth, out),
                    Cardinality::Map => self.map(field.ty, depth, out),
                }
            }
        }
        if self.mistake() {
            if !first {
                out.push(',');
            }
            out.push_str("\"noSuchField\":1");
        }
        out.push('}');
    }

    fn list(&mut self, ty: Type, depth: u32, out: &mut String) {
        if self.mistake() {
            self.value(ty, depth, out);
            return;
        }
        out.push('[');
        for i in 0..self.rng.random_range(0..4) {
            if i > 0 {
                out.push(',');
            }
            if self.mistake() {
                out.push_str("null");
            } else {
                self.value(ty, depth, out);
            }
        }
        out.push(']');
    }

    fn map(&mut self, ty: Type, depth: u32, out: &mut String) {
        let Type::Message(entry) = ty else {
            unreachable!("map fields hold entries")
        };
        let entry = self.schema.messages[entry].clone();
        let key_ty = entry.fields[0].ty;
        let value_ty = entry.fields[1].ty;
        out.push('{');
        for i in 0..self.rng.random_range(0..4) {
            if i > 0 {
                out.push(',');
            }
            let key = match key_ty {
                _ if self.mistake() => "x".to_owned(),
                Type::String => self.text(),
                Type::Bool => self.rng.random::<bool>().to_string(),
                Type::Uint32 => self.rng.random_range(0..5u32).to_string(),
                _ => self.rng.random_range(-3..5i64).to_string(),
            };
            write!(out, "{}:", Json::String(key)).unwrap();
            self.value(value_ty, depth, out);
        }
        out.push('}');
    }

    fn text(&mut self) -> String {
        const PIECES: [&str; 7] = ["", "a", "order-17", "é", "\n", "😀", "\"q\""];
        (0..self.rng.random_range(0..3))
            .map(|_| PIECES[self.rng.random_range(0..PIECES.len())])
            .collect()
    }

    fn value(&mut self, ty: Type, depth: u32, out: &mut String) {
        fn pick(rng: &mut StdRng, options: &[&'static str]) -> &'static str {
            options[rng.random_range(0..options.len())]
        }
        const ANY: [&str; 8] = ["0", "1", "2.0", "1e2", "\"42\"", "true", "{}", "\"x\""];
        const FLOATS: [&str; 10] = [
            "0",
            "-0.0",
            "1.5",
            "-2",
            "1e3",
            "3.4e38",
            "\"NaN\"",
            "\"Infinity\"",
            "\"-Infinity\"",
            "\"2.25\"",
        ];
        const SIGNED_32: [&str; 7] = [
            "0",
            "-1",
            "2147483647",
            "-2147483648",
            "2.0",
            "\"42\"",
            "\"-7\"",
        ];
        const UNSIGNED_32: [&str; 5] = ["0", "1", "4294967295", "1e2", "\"42\""];
        const SIGNED_64: [&str; 6] = [
            "0",
            "-1",
            "9223372036854775807",
            "-9223372036854775808",
            "\"-9223372036854775808\"",
            "\"42\"",
        ];
        const UNSIGNED_64: [&str; 5] = [
            "0",
            "18446744073709551615",
            "\"18446744073709551615\"",
            "7",
            "3e3",
        ];
        if self.mistake() && !matches!(ty, Type::Message(_)) {
            out.push_str(pick(&mut self.rng, &ANY));
            return;
        }
        match ty {
            Type::Double | Type::Float => out.push_str(pick(&mut self.rng, &FLOATS)),
            Type::Int32 | Type::Sint32 | Type::Sfixed32 => {
                out.push_str(pick(&mut self.rng, &SIGNED_32))
            }
            Type::Uint32 | Type::Fixed32 => out.push_str(pick(&mut self.rng, &UNSIGNED_32)),
            Type::Int64 | Type::Sint64 | Type::Sfixed64 => {
                out.push_str(pick(&mut self.rng, &SIGNED_64))
            }
            Type::Uint64 | Type::Fixed64 => out.push_str(pick(&mut self.rng, &UNSIGNED_64)),
            Type::Bool => out.push_str(pick(&mut self.rng, &["true", "false"])),
            Type::String => {
                let text = self.text();
                out.push_str(&Json::String(text).to_string());
            }
            Type::Bytes => {
                let raw: Vec<u8> = (0..self.rng.random_range(0..6))
                    .map(|_| self.rng.random())
                    .collect();
                let text = match self.rng.random_range(0..3) {
                    0 => base64::engine::general_purpose::STANDARD.encode(&raw),
                    1 => base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&raw),
                    _ => base64::engine::general_purpose::STANDARD_NO_PAD.encode(&raw),
                };
                out.push_str(&Json::String(text).to_string());
            }
            Type::Enum(_) => out.push_str(pick(
                &mut self.rng,
                &["\"COLOR_RED\"", "\"COLOR_UNSPECIFIED\"", "2", "0", "7"],
            )),
            Type::Message(index) => {
                if depth >= 3 {
                    out.push_str("{}");
                } else if self.mistake() {
                    out.push_str("[]");
                } else {
                    self.message(index, depth + 1, out);
                }
            }
        }
    }
}

struct Counts {
    accepted: usize,
    direct: usize,
}

/// Checks one body both ways; returns whether the `DynamicMessage` path
/// accepted it and whether the direct path answered.
fn check_request(
    schema: &Schema,
    desc: &MessageDescriptor,
    index: usize,
    text: &str,
) -> (bool, bool) {
    let legacy = message_from_json(desc.clone(), text.as_bytes());
    let Some(bytes) = json_to_wire::encode(schema, index, text.as_bytes()) else {
        return (legacy.is_ok(), false);
    };
    let legacy = legacy.unwrap_or_else(|e| {
        panic!("the direct path accepted a body the DynamicMessage path refuses: {text}\n{e:?}")
    });
    let direct = DynamicMessage::decode(desc.clone(), &bytes[..])
        .unwrap_or_else(|e| panic!("the direct path wrote bytes that do not decode: {text}: {e}"));
    assert_eq!(full_json(&direct), full_json(&legacy), "body: {text}");
    (true, true)
}

/// Checks one encoding both ways, with and without unpopulated fields.
fn check_response(schema: &Schema, desc: &MessageDescriptor, index: usize, bytes: &[u8]) -> bool {
    let mut answered = false;
    for emit in [false, true] {
        let Some(json) = wire_to_json::write(schema, index, bytes, emit) else {
            continue;
        };
        answered = true;
        let legacy = DynamicMessage::decode(desc.clone(), bytes).unwrap_or_else(|e| {
            panic!("the direct path read bytes the DynamicMessage path refuses: {bytes:?}: {e}")
        });
        let expected = message_to_json(&legacy, None, &serialize_options(emit)).unwrap();
        let got: Json = serde_json::from_slice(&json).expect("the direct path wrote valid JSON");
        let expected: Json = serde_json::from_slice(&expected).unwrap();
        assert_eq!(got, expected, "bytes {bytes:?}, emit_unpopulated {emit}");
    }
    answered
}

fn setup() -> (Schema, MessageDescriptor, usize) {
    let pool = pool();
    let schema = Schema::new(&pool);
    let desc = pool.get_message_by_name(EVERYTHING).unwrap();
    let index = schema.direct(&desc).expect("Everything is direct");
    (schema, desc, index)
}

#[test]
fn valid_bodies_transcode_directly_as_dynamic_messages_do() {
    let (schema, desc, index) = setup();
    let mut generator = Gen {
        schema: &schema,
        rng: StdRng::seed_from_u64(7),
        mistakes: 0.0,
    };
    let mut counts = Counts {
        accepted: 0,
        direct: 0,
    };
    for _ in 0..4000 {
        let mut text = String::new();
        generator.message(index, 0, &mut text);
        let (accepted, direct) = check_request(&schema, &desc, index, &text);
        counts.accepted += usize::from(accepted);
        counts.direct += usize::from(direct);
    }
    // The generator's values include out-of-range numbers, so not every
    // body is accepted; of those that are, the direct path takes nearly
    // all (it hands back only duplicates and oneof clashes).
    assert!(counts.accepted > 300, "only {} accepted", counts.accepted);
    assert!(
        counts.direct * 10 >= counts.accepted * 9,
        "direct path took {} of {} accepted bodies",
        counts.direct,
        counts.accepted
    );
}

#[test]
fn mistaken_bodies_are_never_accepted_differently() {
    let (schema, desc, index) = setup();
    let mut generator = Gen {
        schema: &schema,
        rng: StdRng::seed_from_u64(11),
        mistakes: 0.08,
    };
    let mut refused = 0;
    for _ in 0..6000 {
        let mut text = String::new();
        generator.message(index, 0, &mut text);
        if generator.rng.random_bool(0.1) {
            let cut = generator.rng.random_range(0..=text.len());
            if text.is_char_boundary(cut) {
                text.truncate(cut);
            }
        }
        let (accepted, _) = check_request(&schema, &desc, index, &text);
        refused += usize::from(!accepted);
    }
    assert!(
        refused > 1000,
        "only {refused} bodies refused: the mistakes are not exercised"
    );
}

#[test]
fn replies_transcode_directly_as_dynamic_messages_do() {
    let (schema, desc, index) = setup();
    let mut generator = Gen {
        schema: &schema,
        rng: StdRng::seed_from_u64(13),
        mistakes: 0.0,
    };
    let mut answered = 0;
    let mut mutated_answered = 0;
    for _ in 0..3000 {
        let mut text = String::new();
        generator.message(index, 0, &mut text);
        let Ok(message) = message_from_json(desc.clone(), text.as_bytes()) else {
            continue;
        };
        let bytes = message.encode_to_vec();
        answered += usize::from(check_response(&schema, &desc, index, &bytes));
        // The same field twice, a field of a wrong wire type, truncation,
        // unknown fields, flipped bytes.
        let mut mutated = bytes.clone();
        match generator.rng.random_range(0..4) {
            0 => mutated.extend_from_slice(&bytes),
            1 if !bytes.is_empty() => {
                let at = generator.rng.random_range(0..bytes.len());
                mutated[at] ^= 1 << generator.rng.random_range(0..8);
            }
            2 => mutated.truncate(generator.rng.random_range(0..=bytes.len())),
            _ => mutated.extend_from_slice(&[0xf8, 0x07, 0x2a, 0x9a, 0x08, 0x01, 0x00]),
        }
        mutated_answered += usize::from(check_response(&schema, &desc, index, &mutated));
    }
    assert!(
        answered > 500,
        "the direct path answered only {answered} replies"
    );
    assert!(
        mutated_answered > 100,
        "only {mutated_answered} mutated replies answered"
    );
}

#[test]
fn repeated_scalars_read_packed_and_unpacked_alike() {
    let (schema, desc, index) = setup();
    // r_int32 (20) unpacked 1, 2; then packed [3, 4]; r_unpacked (27) packed [5].
    let bytes = [
        0xa0, 0x01, 0x01, 0xa0, 0x01, 0x02, 0xa2, 0x01, 0x02, 0x03, 0x04, 0xda, 0x01, 0x01, 0x05,
    ];
    assert!(check_response(&schema, &desc, index, &bytes));
    let json = wire_to_json::write(&schema, index, &bytes, false).unwrap();
    let json: Json = serde_json::from_slice(&json).unwrap();
    assert_eq!(json["rInt32"], serde_json::json!([1, 2, 3, 4]));
    assert_eq!(json["rUnpacked"], serde_json::json!([5]));
}

#[test]
fn messages_reaching_well_known_types_take_the_dynamic_path() {
    let pool = pool();
    let schema = Schema::new(&pool);
    let with = pool
        .get_message_by_name("plexus.gateway.test.v1.WithTimestamp")
        .unwrap();
    assert_eq!(schema.direct(&with), None);
    let inner = pool
        .get_message_by_name("plexus.gateway.test.v1.Inner")
        .unwrap();
    assert!(
        schema.direct(&inner).is_some(),
        "a recursive message is direct"
    );
}

#[test]
fn the_transcoder_takes_either_path_and_names_mistakes() {
    let pool = pool();
    let transcoder = crate::Transcoder::new(&pool, false);
    let everything = pool.get_message_by_name(EVERYTHING).unwrap();
    let with = pool
        .get_message_by_name("plexus.gateway.test.v1.WithTimestamp")
        .unwrap();
    assert!(transcoder.is_direct(&everything));
    assert!(!transcoder.is_direct(&with));

    let body = br#"{"name":"n","at":"2026-11-28T10:00:00Z"}"#;
    let bytes = transcoder.json_to_protobuf(&with, body).unwrap();
    let json: Json =
        serde_json::from_slice(&transcoder.protobuf_to_json(&with, &bytes).unwrap()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"name": "n", "at": "2026-11-28T10:00:00Z"})
    );

    let body = br#"{"fInt32":"twelve"}"#;
    let error = transcoder.json_to_protobuf(&everything, body).unwrap_err();
    let text = format!("{error:?}");
    assert!(
        text.contains("fInt32"),
        "the error does not name the field: {text}"
    );
    let error = transcoder
        .protobuf_to_json(&everything, &[0x0a, 0x05, 0x01])
        .unwrap_err();
    assert!(format!("{error:?}").contains("not a valid"), "{error:?}");
}
