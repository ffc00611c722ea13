//! [`LagMeter`]: how long messages took from their `time` to being
//! accepted by the next hop, as a histogram.
//!
//! A [`Forwarder`](crate::forward::Forwarder) given a meter records, for
//! each message its destination accepted, the time since the message's
//! CloudEvents `time`. A message written through an outbox gets its time
//! when it is built, inside the transaction, just before the commit: the
//! figure is then the outbox's commit → publish lag (plus the commit
//! itself, so it errs on the long side).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;

/// The longest lag recorded as itself; longer ones count as this.
const LONGEST: Duration = Duration::from_secs(3600);

/// A shared histogram of lags, microsecond resolution (3 significant
/// digits) up to an hour; cheap to clone, all clones record into one.
#[derive(Debug, Clone)]
pub struct LagMeter {
    histogram: Arc<Mutex<Histogram<u64>>>,
}

/// A meter's figures at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LagSummary {
    /// Messages recorded.
    pub count: u64,
    /// The median lag.
    pub p50: Duration,
    /// The 99th percentile.
    pub p99: Duration,
    /// The longest lag recorded.
    pub max: Duration,
}

impl Default for LagMeter {
    fn default() -> Self {
        Self::new()
    }
}

impl LagMeter {
    /// An empty meter.
    pub fn new() -> Self {
        let longest = u64::try_from(LONGEST.as_micros()).unwrap_or(u64::MAX);
        let histogram = Histogram::new_with_bounds(1, longest, 3)
            .unwrap_or_else(|_| unreachable!("the bounds are valid constants"));
        LagMeter {
            histogram: Arc::new(Mutex::new(histogram)),
        }
    }

    /// Records the lag of a message whose time is `time`, as of now (none
    /// for a time in the future: the clocks disagree).
    pub fn record_since(&self, time: SystemTime) {
        self.record_all_since([time]);
    }

    /// Records the lags of messages with these `times` as of now: one
    /// clock read and one lock for a whole batch.
    pub fn record_all_since(&self, times: impl IntoIterator<Item = SystemTime>) {
        let now = SystemTime::now();
        let mut histogram = self.lock();
        for time in times {
            record_into(&mut histogram, now.duration_since(time).unwrap_or_default());
        }
    }

    /// Records one lag.
    pub fn record(&self, lag: Duration) {
        record_into(&mut self.lock(), lag);
    }

    /// The figures so far.
    pub fn summary(&self) -> LagSummary {
        let histogram = self.lock();
        if histogram.is_empty() {
            return LagSummary::default();
        }
        let at = |q: f64| Duration::from_micros(histogram.value_at_quantile(q));
        LagSummary {
            count: histogram.len(),
            p50: at(0.5),
            p99: at(0.99),
            max: Duration::from_micros(histogram.max()),
        }
    }

    /// Forgets what was recorded (say, a warm-up).
    pub fn reset(&self) {
        self.lock().reset();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Histogram<u64>> {
        self.histogram
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

fn record_into(histogram: &mut Histogram<u64>, lag: Duration) {
    let micros = u64::try_from(lag.min(LONGEST).as_micros()).unwrap_or(u64::MAX);
    histogram.saturating_record(micros.max(1));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_recorded_lags() {
        let meter = LagMeter::new();
        assert_eq!(meter.summary(), LagSummary::default());
        for ms in 1..=100 {
            meter.clone().record(Duration::from_millis(ms));
        }
        let summary = meter.summary();
        assert_eq!(summary.count, 100);
        let near = |got: Duration, want: u64| {
            let got = got.as_micros() as f64;
            let want = (want * 1000) as f64;
            (got - want).abs() <= want * 0.002
        };
        assert!(near(summary.p50, 50), "{summary:?}");
        assert!(near(summary.p99, 99), "{summary:?}");
        assert!(near(summary.max, 100), "{summary:?}");
        meter.reset();
        assert_eq!(meter.summary().count, 0);
    }

    #[test]
    fn a_time_in_the_future_records_no_lag_and_a_huge_one_is_capped() {
        let meter = LagMeter::new();
        meter.record_since(SystemTime::now() + Duration::from_secs(60));
        meter.record(Duration::from_secs(100_000));
        let summary = meter.summary();
        assert_eq!(summary.count, 2);
        assert!(summary.p50 <= Duration::from_micros(1), "{summary:?}");
        assert!(
            summary.max >= LONGEST - Duration::from_secs(2),
            "{summary:?}"
        );
    }
}
