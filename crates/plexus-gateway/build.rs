//! Compiles the gateway's test proto with protox (no system `protoc`): the
//! integration tests serve it behind a real plexus server and put the
//! gateway in front of it.

use std::path::PathBuf;

const TEST_PROTO: &str = "plexus/gateway/test/v1/library.proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let tests_root = manifest.join("tests/proto");
    let proto_root = manifest.join("../../proto");
    println!(
        "cargo:rerun-if-changed={}",
        tests_root.join(TEST_PROTO).display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        proto_root.join("google/api").display()
    );
    let mut compiler = protox::Compiler::new([&tests_root, &proto_root])?;
    compiler
        .include_imports(true)
        .include_source_info(true)
        .open_file(TEST_PROTO)?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    // Encoded by protox itself: `prost_types` would drop the
    // `google.api.http` options (extensions) the gateway reads.
    std::fs::write(
        out.join("library_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    tonic_prost_build::configure()
        .build_transport(false)
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}
