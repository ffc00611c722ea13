//! The codec micro-benchmark: protobuf against JSON on the bench's own
//! messages (`QuoteRequest` and `QuoteReply`, small and 1 KiB), nanoseconds
//! per encode and per decode, and encoded size.
//!
//! | codec | what it is |
//! |---|---|
//! | `protobuf` | prost, generated types (what the gRPC client and server run) |
//! | `protobuf-dynamic` | prost-reflect `DynamicMessage` (the gateway's general path, for well-known types and the like) |
//! | `json` | serde_json on the serde twin of the proto3 JSON mapping (what the plain handlers run) |
//! | `json-dynamic` | serde_json on prost-reflect `DynamicMessage`, unknown fields refused (the gateway's general path) |
//! | `json-gateway` | the gateway's own [`Transcoder`](plexus_gateway::Transcoder), what it runs for these messages: "decode" is JSON → protobuf wire bytes, "encode" protobuf wire bytes → JSON, no message built in between |
//!
//! Encoding allocates its output (`encode_to_vec`, `serde_json::to_vec`)
//! and decoding builds a new message each time, as a call does. Each
//! figure is the median over batches of the mean time per operation.

use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use plexus_gateway::Transcoder;
use prost::Message as _;
use prost_reflect::{DescriptorPool, DeserializeOptions, DynamicMessage, SerializeOptions};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Fixture;
use super::json::{QuoteReplyJson, QuoteRequestJson};
use super::quote::{self, FILE_DESCRIPTOR_SET, QuoteReply, QuoteRequest};
use crate::bench::report::{median, print_table};

/// Encoded size and speed of one message with one codec.
#[derive(Debug, Clone, Serialize)]
pub struct CodecRow {
    /// The message, e.g. `QuoteRequest 1KiB`.
    pub message: String,
    /// The codec (see the module table).
    pub codec: &'static str,
    /// Encoded size, bytes.
    pub bytes: usize,
    /// Nanoseconds per encode.
    pub encode_ns: f64,
    /// Nanoseconds per decode.
    pub decode_ns: f64,
}

/// protobuf (prost) against JSON on one message.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// The message.
    pub message: String,
    /// JSON size / protobuf size (serde twin).
    pub json_over_protobuf_bytes: f64,
    /// JSON encode time / protobuf encode time (serde twin, prost).
    pub json_over_protobuf_encode: f64,
    /// JSON decode time / protobuf decode time (serde twin, prost).
    pub json_over_protobuf_decode: f64,
    /// The same for the gateway's dynamic codecs: JSON encode / protobuf
    /// encode.
    pub dynamic_json_over_protobuf_encode: f64,
    /// JSON decode / protobuf decode, dynamic.
    pub dynamic_json_over_protobuf_decode: f64,
    /// The gateway's JSON → wire bytes / prost decode of those bytes.
    pub gateway_json_over_protobuf_decode: f64,
    /// The gateway's wire bytes → JSON / prost encode.
    pub gateway_json_over_protobuf_encode: f64,
}

/// The whole codec benchmark.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Time per batch the operations are repeated for, ms.
    pub batch_ms: f64,
    /// Batches per figure.
    pub batches: usize,
    /// Every message and codec.
    pub rows: Vec<CodecRow>,
    /// protobuf against JSON, per message.
    pub comparisons: Vec<Comparison>,
    /// Whether protobuf is smaller than JSON on every message.
    pub protobuf_smaller: bool,
    /// Whether protobuf encodes and decodes faster than JSON on every
    /// message (prost against the serde twin).
    pub protobuf_faster: bool,
}

/// How long to time each operation.
struct Timing {
    batch: Duration,
    batches: usize,
}

/// Times every codec on every message of `fixtures` (requests and their
/// replies).
pub fn run(fixtures: &[Fixture], quick: bool) -> anyhow::Result<Report> {
    let timing = if quick {
        Timing {
            batch: Duration::from_millis(2),
            batches: 3,
        }
    } else {
        Timing {
            batch: Duration::from_millis(20),
            batches: 15,
        }
    };
    let pool = DescriptorPool::decode(FILE_DESCRIPTOR_SET)
        .context("cannot read the bench's descriptor set")?;
    let transcoder = Transcoder::new(&pool, false);
    let mut rows = Vec::new();
    let mut comparisons = Vec::new();
    for fixture in fixtures {
        let size = fixture.payload.name();
        let request = fixture.request.clone();
        let reply = quote::quote(request.clone())
            .map_err(|e| anyhow::anyhow!("the bench request is invalid: {}", e.0))?;
        let name = format!("QuoteRequest {size}");
        let measured = message::<QuoteRequest, QuoteRequestJson>(
            &timing,
            &pool,
            &transcoder,
            &name,
            &request,
        )?;
        comparisons.push(compare(&name, &measured));
        rows.extend(measured);
        let name = format!("QuoteReply {size}");
        let measured =
            message::<QuoteReply, QuoteReplyJson>(&timing, &pool, &transcoder, &name, &reply)?;
        comparisons.push(compare(&name, &measured));
        rows.extend(measured);
    }
    let protobuf_smaller = comparisons.iter().all(|c| c.json_over_protobuf_bytes > 1.0);
    let protobuf_faster = comparisons
        .iter()
        .all(|c| c.json_over_protobuf_encode > 1.0 && c.json_over_protobuf_decode > 1.0);
    Ok(Report {
        batch_ms: timing.batch.as_secs_f64() * 1e3,
        batches: timing.batches,
        rows,
        comparisons,
        protobuf_smaller,
        protobuf_faster,
    })
}

/// Times the four codecs on `value`, after checking that each reads back
/// what it wrote.
fn message<M, J>(
    timing: &Timing,
    pool: &DescriptorPool,
    transcoder: &Transcoder,
    name: &str,
    value: &M,
) -> anyhow::Result<Vec<CodecRow>>
where
    M: prost::Message + Default + Clone + PartialEq + Into<J>,
    J: Serialize + DeserializeOwned + Clone + PartialEq + Into<M>,
{
    let type_name = format!("plexus.bench.v1.{}", name.split(' ').next().unwrap_or(name));
    let desc = pool
        .get_message_by_name(&type_name)
        .with_context(|| format!("{type_name} is not in the descriptor set"))?;
    let protobuf = value.encode_to_vec();
    let twin: J = value.clone().into();
    let json = serde_json::to_vec(&twin)?;
    let dynamic = DynamicMessage::decode(desc.clone(), protobuf.as_slice())?;
    let serialize = SerializeOptions::new();
    let deserialize = DeserializeOptions::new().deny_unknown_fields(true);
    let json_dynamic = {
        let mut out = serde_json::Serializer::new(Vec::new());
        dynamic.serialize_with_options(&mut out, &serialize)?;
        out.into_inner()
    };
    let read_dynamic_json = |bytes: &[u8]| -> anyhow::Result<DynamicMessage> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let message =
            DynamicMessage::deserialize_with_options(desc.clone(), &mut de, &deserialize)?;
        de.end()?;
        Ok(message)
    };

    anyhow::ensure!(
        M::decode(protobuf.as_slice())? == *value,
        "{name}: protobuf does not read back"
    );
    anyhow::ensure!(
        DynamicMessage::decode(desc.clone(), protobuf.as_slice())?.transcode_to::<M>()? == *value,
        "{name}: dynamic protobuf does not read back"
    );
    anyhow::ensure!(
        Into::<M>::into(serde_json::from_slice::<J>(&json)?) == *value,
        "{name}: JSON does not read back"
    );
    anyhow::ensure!(
        read_dynamic_json(&json_dynamic)?.transcode_to::<M>()? == *value,
        "{name}: dynamic JSON does not read back"
    );
    anyhow::ensure!(
        transcoder.is_direct(&desc),
        "{name}: the gateway does not transcode {type_name} directly"
    );
    let json_gateway = transcoder
        .protobuf_to_json(&desc, &protobuf)
        .map_err(|e| anyhow::anyhow!("{name}: the gateway cannot write JSON: {e:?}"))?;
    let from_gateway = transcoder
        .json_to_protobuf(&desc, &json_gateway)
        .map_err(|e| anyhow::anyhow!("{name}: the gateway cannot read its JSON: {e:?}"))?;
    anyhow::ensure!(
        M::decode(from_gateway.as_slice())? == *value,
        "{name}: the gateway's JSON does not read back"
    );

    let row = |codec, bytes: &[u8], encode_ns, decode_ns| CodecRow {
        message: name.to_owned(),
        codec,
        bytes: bytes.len(),
        encode_ns,
        decode_ns,
    };
    Ok(vec![
        row(
            "protobuf",
            &protobuf,
            time(timing, || value.encode_to_vec()),
            time(timing, || M::decode(protobuf.as_slice())),
        ),
        row(
            "protobuf-dynamic",
            &protobuf,
            time(timing, || dynamic.encode_to_vec()),
            time(timing, || {
                DynamicMessage::decode(desc.clone(), protobuf.as_slice())
            }),
        ),
        row(
            "json",
            &json,
            time(timing, || serde_json::to_vec(&twin)),
            time(timing, || serde_json::from_slice::<J>(&json)),
        ),
        row(
            "json-dynamic",
            &json_dynamic,
            time(timing, || {
                let mut out = serde_json::Serializer::new(Vec::new());
                let _ = dynamic.serialize_with_options(&mut out, &serialize);
                out.into_inner()
            }),
            time(timing, || read_dynamic_json(&json_dynamic)),
        ),
        row(
            "json-gateway",
            &json_gateway,
            time(timing, || transcoder.protobuf_to_json(&desc, &protobuf)),
            time(timing, || transcoder.json_to_protobuf(&desc, &json_gateway)),
        ),
    ])
}

fn compare(name: &str, rows: &[CodecRow]) -> Comparison {
    let find = |codec: &str| {
        rows.iter()
            .find(|r| r.codec == codec)
            .expect("every codec is measured")
    };
    let (pb, json) = (find("protobuf"), find("json"));
    let (pb_dyn, json_dyn) = (find("protobuf-dynamic"), find("json-dynamic"));
    let gateway = find("json-gateway");
    Comparison {
        message: name.to_owned(),
        json_over_protobuf_bytes: json.bytes as f64 / pb.bytes as f64,
        json_over_protobuf_encode: json.encode_ns / pb.encode_ns,
        json_over_protobuf_decode: json.decode_ns / pb.decode_ns,
        dynamic_json_over_protobuf_encode: json_dyn.encode_ns / pb_dyn.encode_ns,
        dynamic_json_over_protobuf_decode: json_dyn.decode_ns / pb_dyn.decode_ns,
        gateway_json_over_protobuf_decode: gateway.decode_ns / pb.decode_ns,
        gateway_json_over_protobuf_encode: gateway.encode_ns / pb.encode_ns,
    }
}

/// Nanoseconds per call of `op`: the median over batches of a batch's
/// mean, each batch about `timing.batch` long.
fn time<R>(timing: &Timing, mut op: impl FnMut() -> R) -> f64 {
    // Calibrate: how many calls fill a batch.
    let mut calls: u64 = 1;
    let per_call = loop {
        let started = Instant::now();
        for _ in 0..calls {
            black_box(op());
        }
        let elapsed = started.elapsed();
        if elapsed >= timing.batch / 10 || calls >= 1 << 30 {
            break elapsed.as_secs_f64() / calls as f64;
        }
        calls *= 4;
    };
    let calls = ((timing.batch.as_secs_f64() / per_call.max(1e-10)) as u64).max(1);
    let batches = (0..timing.batches).map(|_| {
        let started = Instant::now();
        for _ in 0..calls {
            black_box(op());
        }
        started.elapsed().as_secs_f64() * 1e9 / calls as f64
    });
    median(batches)
}

/// Prints the codec table and the protobuf-against-JSON verdict.
pub fn print(report: &Report) {
    println!("codec micro-benchmark (ns per operation; encode allocates its output):");
    let headers = ["message", "codec", "bytes", "encode ns", "decode ns"];
    let body: Vec<Vec<String>> = report
        .rows
        .iter()
        .map(|r| {
            vec![
                r.message.clone(),
                r.codec.to_owned(),
                r.bytes.to_string(),
                format!("{:.0}", r.encode_ns),
                format!("{:.0}", r.decode_ns),
            ]
        })
        .collect();
    print_table(&headers, &body);
    println!();
    println!(
        "JSON against protobuf (× = JSON / protobuf; generated types; DynamicMessage; the gateway's transcoding against prost):"
    );
    for c in &report.comparisons {
        println!(
            "  {:<20} size {:.2}×, encode {:.2}×, decode {:.2}×; dynamic: encode {:.2}×, decode {:.2}×; gateway: write {:.2}×, read {:.2}×",
            c.message,
            c.json_over_protobuf_bytes,
            c.json_over_protobuf_encode,
            c.json_over_protobuf_decode,
            c.dynamic_json_over_protobuf_encode,
            c.dynamic_json_over_protobuf_decode,
            c.gateway_json_over_protobuf_encode,
            c.gateway_json_over_protobuf_decode
        );
    }
    let verdict = |holds: bool| if holds { "holds" } else { "does NOT hold" };
    println!(
        "seed claim \"protobuf is more compact than JSON\": {}; \"protobuf is faster than JSON\": {}",
        verdict(report.protobuf_smaller),
        verdict(report.protobuf_faster)
    );
}
