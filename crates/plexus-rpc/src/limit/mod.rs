//! Message size limits enforced on the gRPC framing itself, for every
//! service behind the server (including ones added by the application).
//!
//! [`MessageSizeLayer`] reads the 5-byte length prefix of each gRPC message
//! as it streams past:
//!
//! - a request message longer than the decoding limit fails the call with
//!   `RESOURCE_EXHAUSTED` as soon as its prefix arrives, before its bytes are
//!   buffered, and the handler sees that status instead of the message;
//! - a response message longer than the encoding limit is not sent: the
//!   stream ends with `RESOURCE_EXHAUSTED` instead.

mod frame;
mod future;
mod layer;

pub use future::ResponseFuture;
pub use layer::{LimitedBody, MessageSize, MessageSizeLayer};
