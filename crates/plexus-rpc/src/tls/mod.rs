//! TLS and mutual TLS with rustls (ring provider).

mod client;
mod pem;
mod server;

pub use client::ClientTls;
pub use server::ServerTls;
