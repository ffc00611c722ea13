//! Deadlines: an absolute instant by which work must finish, carried between
//! services as the *remaining* budget.
//!
//! A deadline enters a service as a relative budget (`grpc-timeout`, or the
//! HTTP header [`TIMEOUT_HEADER`]), is turned into an absolute [`Deadline`] at
//! arrival, and leaves on every outgoing call as what is left of it. Encoding
//! always rounds the budget *down*, so a callee is never promised more time
//! than the caller has.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, excerpt};

/// The gRPC header carrying the remaining budget of a call.
pub const GRPC_TIMEOUT_HEADER: &str = "grpc-timeout";

/// The HTTP (and message) header carrying the remaining budget in whole
/// milliseconds, e.g. `plexus-timeout-ms: 250`.
pub const TIMEOUT_HEADER: &str = "plexus-timeout-ms";

/// The largest budget a `grpc-timeout` value can express: 99,999,999 hours.
const GRPC_TIMEOUT_MAX_DIGITS: usize = 8;
const GRPC_TIMEOUT_MAX_VALUE: u64 = 99_999_999;

/// An absolute point in time by which some work must complete.
///
/// Built on [`tokio::time::Instant`], so tests that pause tokio's clock see
/// deadlines move with virtual time.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Deadline {
    at: Instant,
}

impl Deadline {
    /// A deadline `budget` from now.
    pub fn after(budget: Duration) -> Self {
        let now = Instant::now();
        Deadline {
            at: now.checked_add(budget).unwrap_or_else(far_future),
        }
    }

    /// A deadline at the given instant.
    pub fn at(at: Instant) -> Self {
        Deadline { at }
    }

    /// The instant of this deadline.
    pub fn instant(&self) -> Instant {
        self.at
    }

    /// Time left before the deadline, zero once it has passed.
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// Whether the deadline has passed.
    pub fn is_expired(&self) -> bool {
        Instant::now() >= self.at
    }

    /// The earlier of two optional deadlines.
    pub fn earliest(a: Option<Deadline>, b: Option<Deadline>) -> Option<Deadline> {
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Parses a `grpc-timeout` value (at most 8 digits and a unit among
    /// `H M S m u n`) into a deadline counted from now.
    pub fn from_grpc_timeout(value: &str) -> Result<Self, Error> {
        parse_grpc_timeout(value).map(Deadline::after)
    }

    /// The remaining budget in `grpc-timeout` format, rounded down, using the
    /// finest unit that fits in 8 digits. An expired deadline encodes as `0n`.
    pub fn to_grpc_timeout(&self) -> String {
        encode_grpc_timeout(self.remaining())
    }

    /// Parses the [`TIMEOUT_HEADER`] value (whole milliseconds) into a
    /// deadline counted from now.
    pub fn from_timeout_ms(value: &str) -> Result<Self, Error> {
        let invalid = |reason| Error::InvalidDeadline {
            source_name: TIMEOUT_HEADER,
            value: excerpt(value),
            reason,
        };
        let trimmed = value.trim();
        if trimmed.is_empty() || !trimmed.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(
                "expected a whole number of milliseconds, e.g. `250`",
            ));
        }
        let ms: u64 = trimmed
            .parse()
            .map_err(|_| invalid("the number of milliseconds is too large"))?;
        Ok(Deadline::after(Duration::from_millis(ms)))
    }

    /// The remaining budget as whole milliseconds (rounded down), the
    /// [`TIMEOUT_HEADER`] format.
    pub fn to_timeout_ms(&self) -> String {
        self.remaining().as_millis().to_string()
    }
}

impl fmt::Debug for Deadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deadline")
            .field("remaining", &self.remaining())
            .finish()
    }
}

fn far_future() -> Instant {
    // About 30 years: far enough to mean "no deadline" and safe to add to.
    Instant::now() + Duration::from_secs(86_400 * 365 * 30)
}

/// Parses a `grpc-timeout` value into a duration.
pub fn parse_grpc_timeout(value: &str) -> Result<Duration, Error> {
    let invalid = |reason| Error::InvalidDeadline {
        source_name: GRPC_TIMEOUT_HEADER,
        value: excerpt(value),
        reason,
    };
    let Some(unit) = value.chars().last() else {
        return Err(invalid(
            "empty value; expected digits and a unit, e.g. `250m`",
        ));
    };
    let digits = &value[..value.len() - unit.len_utf8()];
    if digits.is_empty() || digits.len() > GRPC_TIMEOUT_MAX_DIGITS {
        return Err(invalid(
            "expected 1 to 8 digits followed by a unit (H, M, S, m, u, n)",
        ));
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("the amount must be ASCII digits only"));
    }
    let n: u64 = digits
        .parse()
        .map_err(|_| invalid("the amount is not a number"))?;
    let duration = match unit {
        'H' => Duration::from_secs(n * 3600),
        'M' => Duration::from_secs(n * 60),
        'S' => Duration::from_secs(n),
        'm' => Duration::from_millis(n),
        'u' => Duration::from_micros(n),
        'n' => Duration::from_nanos(n),
        _ => {
            return Err(invalid(
                "unknown unit; expected H (hours), M, S, m (millis), u (micros) or n (nanos)",
            ));
        }
    };
    Ok(duration)
}

/// Encodes a duration in `grpc-timeout` format, rounded down, using the
/// finest unit whose amount fits in 8 digits.
pub fn encode_grpc_timeout(budget: Duration) -> String {
    let nanos = budget.as_nanos();
    let units: [(u128, char); 6] = [
        (1, 'n'),
        (1_000, 'u'),
        (1_000_000, 'm'),
        (1_000_000_000, 'S'),
        (60_000_000_000, 'M'),
        (3_600_000_000_000, 'H'),
    ];
    for (per, unit) in units {
        let amount = nanos / per;
        if amount <= u128::from(GRPC_TIMEOUT_MAX_VALUE) {
            return format!("{amount}{unit}");
        }
    }
    format!("{GRPC_TIMEOUT_MAX_VALUE}H")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_round_trips_in_every_unit() {
        for (text, expected) in [
            ("1H", Duration::from_secs(3600)),
            ("2M", Duration::from_secs(120)),
            ("3S", Duration::from_secs(3)),
            ("250m", Duration::from_millis(250)),
            ("7u", Duration::from_micros(7)),
            ("99999999n", Duration::from_nanos(99_999_999)),
        ] {
            assert_eq!(parse_grpc_timeout(text).unwrap(), expected, "{text}");
        }
    }

    #[test]
    fn grpc_timeout_encoding_uses_finest_unit_and_rounds_down() {
        assert_eq!(
            encode_grpc_timeout(Duration::from_nanos(99_999_999)),
            "99999999n"
        );
        assert_eq!(
            encode_grpc_timeout(Duration::from_nanos(100_000_001)),
            "100000u"
        );
        assert_eq!(
            encode_grpc_timeout(Duration::from_millis(1_500)),
            "1500000u"
        );
        assert_eq!(encode_grpc_timeout(Duration::from_secs(200_000)), "200000S");
        assert_eq!(encode_grpc_timeout(Duration::ZERO), "0n");
        assert_eq!(
            encode_grpc_timeout(Duration::from_secs(u64::MAX / 4)),
            "99999999H"
        );
        // rounding down: 1.9999 ms encoded in micros keeps 1999u, never 2000u.
        assert_eq!(
            encode_grpc_timeout(Duration::from_nanos(199_999_999)),
            "199999u"
        );
    }

    #[test]
    fn grpc_timeout_rejects_malformed_values_with_reason() {
        for bad in ["", "m", "123456789m", "12x", "-5m", "1.5S", "٣S"] {
            let err = parse_grpc_timeout(bad).unwrap_err();
            assert!(err.to_string().contains("grpc-timeout"), "{bad}: {err}");
            assert_eq!(err.kind(), crate::ErrorKind::InvalidArgument);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn remaining_budget_shrinks_with_time() {
        let deadline = Deadline::after(Duration::from_millis(100));
        assert_eq!(deadline.remaining(), Duration::from_millis(100));
        tokio::time::advance(Duration::from_millis(30)).await;
        assert_eq!(deadline.remaining(), Duration::from_millis(70));
        assert_eq!(deadline.to_grpc_timeout(), "70000000n");
        assert_eq!(deadline.to_timeout_ms(), "70");
        tokio::time::advance(Duration::from_millis(80)).await;
        assert!(deadline.is_expired());
        assert_eq!(deadline.to_grpc_timeout(), "0n");
    }

    #[tokio::test(start_paused = true)]
    async fn timeout_ms_header_parses_and_rejects() {
        let d = Deadline::from_timeout_ms("250").unwrap();
        assert_eq!(d.remaining(), Duration::from_millis(250));
        for bad in ["", "abc", "-1", "1.5", "99999999999999999999999"] {
            let err = Deadline::from_timeout_ms(bad).unwrap_err();
            assert!(err.to_string().contains(TIMEOUT_HEADER), "{bad}: {err}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn earliest_picks_the_sooner_deadline() {
        let a = Deadline::after(Duration::from_millis(10));
        let b = Deadline::after(Duration::from_millis(20));
        assert_eq!(Deadline::earliest(Some(a), Some(b)), Some(a));
        assert_eq!(Deadline::earliest(None, Some(b)), Some(b));
        assert_eq!(Deadline::earliest(None, None), None);
    }
}
