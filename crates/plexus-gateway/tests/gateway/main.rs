//! The gateway in front of a real plexus gRPC server on loopback: every
//! binding, the error mapping, streams, deadline and trace propagation,
//! the OpenAPI document, and a fuzz-style run of bad bodies.

mod bindings;
mod context;
mod errors;
mod fuzz;
mod mistakes;
mod openapi;
mod streams;
mod support;
