//! Compiles the shop's protos with protox (no system `protoc`), and writes
//! their descriptor sets for server reflection and the REST gateway: one per
//! service, and one for the whole shop. The sets are encoded by protox
//! itself so they keep the `google.api.http` method options (going through
//! `prost_types` would drop them); `google/api/*.proto` live beside the
//! shop's protos in `proto/`.

use std::path::{Path, PathBuf};

const ORDERS: &str = "shop/orders/v1/orders.proto";
const SUPPORT: &str = "shop/support/v1/support.proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    for file in [ORDERS, SUPPORT] {
        println!("cargo:rerun-if-changed={}", proto_root.join(file).display());
        write_descriptor_set(&proto_root, file, &out)?;
    }
    println!(
        "cargo:rerun-if-changed={}",
        proto_root.join("google/api").display()
    );
    let all = compiler(&proto_root, &[ORDERS, SUPPORT])?;
    std::fs::write(
        out.join("shop_descriptor.bin"),
        all.encode_file_descriptor_set(),
    )?;
    tonic_prost_build::configure()
        .build_transport(false)
        .compile_fds(all.file_descriptor_set())?;
    Ok(())
}

/// Writes `<package>_descriptor.bin` (e.g. `shop.orders.v1_descriptor.bin`).
fn write_descriptor_set(
    root: &Path,
    file: &str,
    out: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let compiler = compiler(root, &[file])?;
    let set = compiler.file_descriptor_set();
    let package = set
        .file
        .iter()
        .find(|f| f.name() == file)
        .map(|f| f.package().to_owned())
        .ok_or_else(|| format!("{file} is missing from its own descriptor set"))?;
    std::fs::write(
        out.join(format!("{package}_descriptor.bin")),
        compiler.encode_file_descriptor_set(),
    )?;
    Ok(())
}

/// A protox compiler holding `files` and their imports, with source info.
fn compiler(root: &Path, files: &[&str]) -> Result<protox::Compiler, protox::Error> {
    let mut compiler = protox::Compiler::new([root])?;
    compiler
        .include_imports(true)
        .include_source_info(true)
        .open_files(files)?;
    Ok(compiler)
}
