//! Compiles the protos of the `plexus` binary's own benches with protox (no
//! system `protoc`).

use std::path::PathBuf;

/// The unary call `plexus bench http` measures, with its REST binding.
const BENCH_PROTO: &str = "plexus/bench/v1/bench.proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    println!(
        "cargo:rerun-if-changed={}",
        proto_root.join(BENCH_PROTO).display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        proto_root.join("google/api").display()
    );
    let mut compiler = protox::Compiler::new([&proto_root])?;
    compiler.include_imports(true).open_file(BENCH_PROTO)?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    // Encoded by protox itself: going through `prost_types` would drop the
    // `google.api.http` options the gateway reads.
    std::fs::write(
        out.join("bench_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    tonic_prost_build::configure()
        .build_transport(false)
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}
