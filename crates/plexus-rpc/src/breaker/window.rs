//! The sliding window of recent outcomes a circuit measures.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use super::Window;

/// Slices of a time window.
const SLICES: u32 = 10;

/// Recent outcomes: how many calls, how many failed.
#[derive(Debug)]
pub(crate) enum Outcomes {
    Count {
        /// `true` for a failure, newest last.
        recent: VecDeque<bool>,
        capacity: usize,
        failures: u32,
    },
    Time {
        epoch: Instant,
        slice: Duration,
        /// (slice number, calls, failures), indexed by slice number modulo
        /// the slice count.
        slices: Vec<(u64, u32, u32)>,
    },
}

impl Outcomes {
    pub(crate) fn new(window: Window) -> Self {
        match window {
            Window::Count(n) => Outcomes::Count {
                recent: VecDeque::with_capacity(n as usize),
                capacity: n as usize,
                failures: 0,
            },
            Window::Time(d) => Outcomes::Time {
                epoch: Instant::now(),
                slice: (d / SLICES).max(Duration::from_millis(1)),
                slices: vec![(u64::MAX, 0, 0); SLICES as usize],
            },
        }
    }

    pub(crate) fn record(&mut self, failed: bool) {
        match self {
            Outcomes::Count {
                recent,
                capacity,
                failures,
            } => {
                if recent.len() == *capacity && recent.pop_front() == Some(true) {
                    *failures -= 1;
                }
                recent.push_back(failed);
                *failures += u32::from(failed);
            }
            Outcomes::Time {
                epoch,
                slice,
                slices,
            } => {
                let number = slice_number(*epoch, *slice);
                let entry = &mut slices[(number % u64::from(SLICES)) as usize];
                if entry.0 != number {
                    *entry = (number, 0, 0);
                }
                entry.1 += 1;
                entry.2 += u32::from(failed);
            }
        }
    }

    /// (calls, failures) in the window now.
    pub(crate) fn counts(&self) -> (u32, u32) {
        match self {
            Outcomes::Count {
                recent, failures, ..
            } => (recent.len() as u32, *failures),
            Outcomes::Time {
                epoch,
                slice,
                slices,
            } => {
                let now = slice_number(*epoch, *slice);
                let oldest = now.saturating_sub(u64::from(SLICES) - 1);
                slices
                    .iter()
                    .filter(|(n, _, _)| *n != u64::MAX && *n >= oldest && *n <= now)
                    .fold((0, 0), |(c, f), (_, calls, failures)| {
                        (c + calls, f + failures)
                    })
            }
        }
    }

    pub(crate) fn clear(&mut self) {
        match self {
            Outcomes::Count {
                recent, failures, ..
            } => {
                recent.clear();
                *failures = 0;
            }
            Outcomes::Time { slices, .. } => slices.fill((u64::MAX, 0, 0)),
        }
    }
}

fn slice_number(epoch: Instant, slice: Duration) -> u64 {
    let elapsed = Instant::now().saturating_duration_since(epoch);
    u64::try_from(elapsed.as_nanos() / slice.as_nanos().max(1)).unwrap_or(u64::MAX - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_window_forgets_the_oldest() {
        let mut w = Outcomes::new(Window::Count(3));
        for failed in [true, true, false, false] {
            w.record(failed);
        }
        assert_eq!(w.counts(), (3, 1));
        w.clear();
        assert_eq!(w.counts(), (0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn time_window_forgets_old_slices() {
        let mut w = Outcomes::new(Window::Time(Duration::from_secs(1)));
        w.record(true);
        tokio::time::advance(Duration::from_millis(500)).await;
        w.record(false);
        assert_eq!(w.counts(), (2, 1));
        tokio::time::advance(Duration::from_millis(600)).await;
        assert_eq!(w.counts(), (1, 0));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(w.counts(), (0, 0));
    }
}
