//! The plexus message model.
//!
//! `plexus-core` holds what every plexus transport shares and depends on no
//! broker, database or web framework:
//!
//! - [`Message`]: CloudEvents 1.0 attributes, an ordering key, headers and a
//!   payload, always valid once built;
//! - [`Deadline`]: an absolute instant, carried between services as the
//!   remaining budget (`grpc-timeout`, [`deadline::TIMEOUT_HEADER`]);
//! - [`TraceContext`]: W3C `traceparent`;
//! - [`codec::Codec`]: protobuf and JSON payloads behind one trait;
//! - [`Error`] with a portable [`ErrorKind`];
//! - [`bus`]: the asynchronous messaging contract ([`bus::Publisher`],
//!   [`bus::Subscriber`], [`bus::Delivery`], [`bus::Features`]).

pub mod bus;
pub mod codec;
pub mod deadline;
mod error;
pub mod message;
pub mod trace;

pub use deadline::Deadline;
pub use error::{Error, ErrorKind};
pub use message::{Message, MessageBuilder, MessageParts};
pub use trace::TraceContext;
