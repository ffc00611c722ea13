//! Compiles the shop's protos with protox (no system `protoc`), and writes
//! their descriptor sets for server reflection: one per service, and one for
//! the whole shop.

use std::path::{Path, PathBuf};

use prost::Message;

const ORDERS: &str = "shop/orders/v1/orders.proto";
const SUPPORT: &str = "shop/support/v1/support.proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    for file in [ORDERS, SUPPORT] {
        println!("cargo:rerun-if-changed={}", proto_root.join(file).display());
        write_descriptor_set(&proto_root, file, &out)?;
    }
    let all = protox::compile([ORDERS, SUPPORT], [&proto_root])?;
    std::fs::write(out.join("shop_descriptor.bin"), all.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_transport(false)
        .compile_fds(all)?;
    Ok(())
}

/// Writes `<package>_descriptor.bin` (e.g. `shop.orders.v1_descriptor.bin`).
fn write_descriptor_set(
    root: &Path,
    file: &str,
    out: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let set = protox::compile([file], [root])?;
    let package = set
        .file
        .iter()
        .find(|f| f.name() == file)
        .map(|f| f.package().to_owned())
        .ok_or_else(|| format!("{file} is missing from its own descriptor set"))?;
    std::fs::write(
        out.join(format!("{package}_descriptor.bin")),
        set.encode_to_vec(),
    )?;
    Ok(())
}
