//! W3C Trace Context (`traceparent`), so one request can be followed across
//! every hop: gRPC and HTTP calls, published messages and function invocations.

use std::fmt;

use crate::error::{Error, excerpt};

/// The W3C trace-context header name.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// The position of one operation in a distributed trace: the trace it
/// belongs to, its own span id, and the sampling flags.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    flags: u8,
}

impl TraceContext {
    /// Starts a new trace with random ids, marked as sampled.
    pub fn new_root() -> Self {
        TraceContext {
            trace_id: nonzero_random(),
            span_id: nonzero_random(),
            flags: 0x01,
        }
    }

    /// A new span in the same trace, whose parent is `self`.
    pub fn child(&self) -> Self {
        TraceContext {
            trace_id: self.trace_id,
            span_id: nonzero_random(),
            flags: self.flags,
        }
    }

    /// Parses a `traceparent` value: `version-traceid-spanid-flags`.
    ///
    /// Version `00` must have exactly four fields; a later version is read by
    /// its first four fields, as the specification asks.
    pub fn parse(value: &str) -> Result<Self, Error> {
        let invalid = |reason| Error::InvalidTraceparent {
            value: excerpt(value),
            reason,
        };
        let mut parts = value.split('-');
        let version = parts.next().unwrap_or_default();
        let trace = parts.next().ok_or_else(|| invalid("missing trace id"))?;
        let span = parts.next().ok_or_else(|| invalid("missing parent id"))?;
        let flags = parts.next().ok_or_else(|| invalid("missing trace flags"))?;
        let version = hex_array::<1>(version)
            .ok_or_else(|| invalid("version must be 2 lowercase hex digits"))?[0];
        if version == 0xff {
            return Err(invalid("version ff is forbidden"));
        }
        if version == 0 && parts.next().is_some() {
            return Err(invalid("version 00 has exactly four fields"));
        }
        let trace_id = hex_array::<16>(trace)
            .ok_or_else(|| invalid("trace id must be 32 lowercase hex digits"))?;
        let span_id = hex_array::<8>(span)
            .ok_or_else(|| invalid("parent id must be 16 lowercase hex digits"))?;
        let flags = hex_array::<1>(flags)
            .ok_or_else(|| invalid("flags must be 2 lowercase hex digits"))?[0];
        if trace_id == [0; 16] {
            return Err(invalid("trace id must not be all zeros"));
        }
        if span_id == [0; 8] {
            return Err(invalid("parent id must not be all zeros"));
        }
        Ok(TraceContext {
            trace_id,
            span_id,
            flags,
        })
    }

    /// The `traceparent` header value for this span (version `00`).
    pub fn to_traceparent(&self) -> String {
        self.to_string()
    }

    /// The trace id as 32 lowercase hex digits.
    pub fn trace_id(&self) -> String {
        hex(&self.trace_id)
    }

    /// This span's id as 16 lowercase hex digits.
    pub fn span_id(&self) -> String {
        hex(&self.span_id)
    }

    /// Whether the caller asked for this trace to be recorded.
    pub fn is_sampled(&self) -> bool {
        self.flags & 0x01 == 0x01
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            hex(&self.trace_id),
            hex(&self.span_id),
            self.flags
        )
    }
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceContext({self})")
    }
}

fn nonzero_random<const N: usize>() -> [u8; N] {
    loop {
        let bytes: [u8; N] = rand::random();
        if bytes != [0; N] {
            return bytes;
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0x0f) as usize] as char);
    }
    out
}

fn hex_array<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = text.as_bytes();
    if bytes.len() != N * 2 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_and_formats_the_specification_example() {
        let ctx = TraceContext::parse(SAMPLE).unwrap();
        assert_eq!(ctx.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ctx.span_id(), "00f067aa0ba902b7");
        assert!(ctx.is_sampled());
        assert_eq!(ctx.to_traceparent(), SAMPLE);
    }

    #[test]
    fn child_keeps_trace_and_changes_span() {
        let parent = TraceContext::parse(SAMPLE).unwrap();
        let child = parent.child();
        assert_eq!(child.trace_id(), parent.trace_id());
        assert_ne!(child.span_id(), parent.span_id());
        assert_eq!(TraceContext::parse(&child.to_traceparent()).unwrap(), child);
    }

    #[test]
    fn later_versions_are_read_by_their_first_four_fields() {
        let v = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-extra";
        let ctx = TraceContext::parse(v).unwrap();
        assert!(!ctx.is_sampled());
    }

    #[test]
    fn rejects_malformed_values() {
        for bad in [
            "",
            "00",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        ] {
            let err = TraceContext::parse(bad).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidArgument, "{bad}");
            assert!(err.to_string().starts_with("invalid traceparent"), "{err}");
        }
    }
}
