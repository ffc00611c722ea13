//! What `plexus call` prints: replies as proto3 JSON, one document per
//! line, and the `--list` listings.

use std::io::{self, Write};

use prost_reflect::{
    DynamicMessage, MethodDescriptor, ReflectMessage, SerializeOptions, ServiceDescriptor,
};

use super::error::Failure;

/// Writes replies to standard output as each arrives.
#[derive(Debug)]
pub struct Output {
    options: SerializeOptions,
}

impl Output {
    /// Prints fields at their default value too when `emit_defaults`.
    pub fn new(emit_defaults: bool) -> Self {
        Output {
            options: SerializeOptions::new().skip_default_fields(!emit_defaults),
        }
    }

    /// Prints `message` as one line of JSON.
    pub fn message(&mut self, message: &DynamicMessage) -> Result<(), Failure> {
        let mut line = Vec::new();
        message
            .serialize_with_options(&mut serde_json::Serializer::new(&mut line), &self.options)
            .map_err(|e| {
                Failure::unusable(format!(
                    "cannot print the {} reply as JSON: {e}",
                    message.descriptor().full_name()
                ))
            })?;
        line.push(b'\n');
        write_stdout(&line)
    }
}

/// Prints the service names, one per line.
pub fn services(names: &[String]) -> Result<(), Failure> {
    let mut text = String::new();
    for name in names {
        text.push_str(name);
        text.push('\n');
    }
    write_stdout(text.as_bytes())
}

/// Prints `service` and its methods (only `method` when given).
pub fn methods(
    service: &ServiceDescriptor,
    method: Option<&MethodDescriptor>,
) -> Result<(), Failure> {
    let mut text = format!("{}\n", service.full_name());
    let methods: Vec<MethodDescriptor> = match method {
        Some(method) => vec![method.clone()],
        None => service.methods().collect(),
    };
    for method in &methods {
        text.push_str("  ");
        text.push_str(&signature(method));
        text.push('\n');
    }
    write_stdout(text.as_bytes())
}

/// `rpc Name(Request) returns (stream Reply);  // server streaming`
pub fn signature(method: &MethodDescriptor) -> String {
    let stream = |yes: bool| if yes { "stream " } else { "" };
    format!(
        "rpc {}({}{}) returns ({}{});  // {}",
        method.name(),
        stream(method.is_client_streaming()),
        method.input().full_name(),
        stream(method.is_server_streaming()),
        method.output().full_name(),
        kind(method),
    )
}

/// The call kind of `method`, in words.
pub fn kind(method: &MethodDescriptor) -> &'static str {
    match (method.is_client_streaming(), method.is_server_streaming()) {
        (false, false) => "unary",
        (false, true) => "server streaming",
        (true, false) => "client streaming",
        (true, true) => "bidirectional streaming",
    }
}

/// Writes and flushes, so that each reply of a stream shows as it arrives.
/// A closed pipe (`plexus call … | head -1`) ends the command quietly.
fn write_stdout(bytes: &[u8]) -> Result<(), Failure> {
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(|e| match e.kind() {
            io::ErrorKind::BrokenPipe => Failure::OutputClosed,
            _ => Failure::unusable(format!("cannot write to standard output: {e}")),
        })
}
