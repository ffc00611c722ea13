//! RFC 3339 timestamps for the CloudEvents `time` attribute.

use std::time::SystemTime;

use ::time::OffsetDateTime;
use ::time::format_description::well_known::Rfc3339;

use crate::error::{Error, excerpt};

/// Formats a time as RFC 3339 in UTC, e.g. `2026-11-28T06:42:22.123456789Z`.
pub fn format_time(t: SystemTime) -> String {
    OffsetDateTime::from(t)
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

/// Parses an RFC 3339 timestamp with any UTC offset.
pub fn parse_time(value: &str) -> Result<SystemTime, Error> {
    OffsetDateTime::parse(value, &Rfc3339)
        .map(SystemTime::from)
        .map_err(|e| {
            Error::attribute(
                "time",
                format!(
                    "`{}` is not an RFC 3339 timestamp ({e}); expected e.g. 2026-11-28T06:42:22Z",
                    excerpt(value)
                ),
            )
        })
}
