//! Compiles plexus's own protos with protox (no system `protoc`).

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = ["plexus/echo/v1/echo.proto"];
    for file in files {
        println!("cargo:rerun-if-changed={}", proto_root.join(file).display());
    }
    let fds = protox::compile(files, [&proto_root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("plexus_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_transport(false)
        .bytes(".")
        .compile_fds(fds)?;
    Ok(())
}
