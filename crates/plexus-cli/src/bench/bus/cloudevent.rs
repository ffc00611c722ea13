//! What a raw baseline's messages carry (its [`Wire`]), and the
//! CloudEvents attributes of a bench message for the baselines that send
//! them as plexus's bus does.
//!
//! plexus's broker backends send every message as a CloudEvent in the
//! broker's binary content mode binding: the event's id, source, type,
//! specversion, time and content type travel as headers (columns on
//! PostgreSQL), 150-200 bytes beside a 64-byte payload. A raw client that
//! sends only the payload and its send time moves and stores less, so
//! each broker has two baselines: the same CloudEvent on the wire (the
//! floors' baseline: it measures what plexus's code costs) and the bare
//! payload (what the CloudEvents binding itself costs).

use std::time::SystemTime;

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The CloudEvents spec version the attributes follow.
pub const SPEC_VERSION: &str = "1.0";
/// The source of every bench message (as plexus's bench messages).
pub const SOURCE: &str = "/plexus/bench";
/// The type of every bench message.
pub const TYPE: &str = "plexus.bench.Event";
/// The content type of every bench payload.
pub const CONTENT_TYPE: &str = "application/octet-stream";

/// What a raw baseline sends with each payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Wire {
    /// The CloudEvent plexus's binding sends for the same message: a new
    /// id per message, the source, type, specversion, the batch's send
    /// time (RFC 3339) and the content type, under the binding's names.
    CloudEvents,
    /// The payload and its send time, nothing else.
    Bare,
}

impl Wire {
    /// Its name in file names and tables.
    pub fn name(self) -> &'static str {
        match self {
            Wire::CloudEvents => "ce",
            Wire::Bare => "bare",
        }
    }
}

/// A new event id: a UUID version 7, as plexus gives its messages.
pub fn id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// `time` as the RFC 3339 timestamp the `time` attribute carries.
pub fn time(time: SystemTime) -> String {
    OffsetDateTime::from(time)
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

/// Microseconds since the Unix epoch of an RFC 3339 `time` attribute, if
/// it is one.
pub fn parse_time_us(value: &str) -> Option<u64> {
    let time = OffsetDateTime::parse(value, &Rfc3339).ok()?;
    u64::try_from(time.unix_timestamp_nanos() / 1_000).ok()
}
