//! A partition's progress beyond its committed offset, carried in the
//! commit's metadata: which offsets between the committed one and a
//! position are still unacknowledged (every other one there is done),
//! and how often unacknowledged ones were delivered. Kafka keeps one
//! offset per partition; this lets a group acknowledge out of order and
//! still, after a rebalance or a restart, neither deliver an acknowledged
//! message again nor forget a message's attempts.
//!
//! Text form: `p1;POS;UNACKED;ATTEMPTS`, `UNACKED` ranges `a-b` or `a`
//! separated by `,`, `ATTEMPTS` entries `a-b:n` or `a:n`.

use std::fmt::Write as _;

/// Kafka's default bound on commit metadata is 4,096 bytes.
const MAX_METADATA: usize = 4_000;
const VERSION: &str = "p1";

/// A partition's progress, read back from commit metadata.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Progress {
    /// Offsets from the committed one up to here are done unless listed
    /// in `unacked`.
    pos: i64,
    /// Inclusive ranges, ascending.
    unacked: Vec<(i64, i64)>,
    /// Inclusive ranges with their delivery count, ascending.
    attempts: Vec<(i64, i64, u32)>,
}

impl Progress {
    /// Whether `offset` was acknowledged (or skipped) already.
    pub(crate) fn done(&self, offset: i64) -> bool {
        offset < self.pos && !self.unacked.iter().any(|&(a, b)| (a..=b).contains(&offset))
    }

    /// How often `offset` was delivered already.
    pub(crate) fn attempts(&self, offset: i64) -> u32 {
        self.attempts
            .iter()
            .find(|&&(a, b, _)| (a..=b).contains(&offset))
            .map_or(0, |&(_, _, n)| n)
    }

    /// Whether nothing at or past `offset` is known here.
    pub(crate) fn passed(&self, offset: i64) -> bool {
        offset >= self.pos && self.attempts.last().is_none_or(|&(_, b, _)| offset > b)
    }

    /// Reads metadata written by [`encode`]; `None` for anything else.
    pub(crate) fn decode(metadata: &str) -> Option<Progress> {
        let mut fields = metadata.split(';');
        if fields.next()? != VERSION {
            return None;
        }
        let pos = fields.next()?.parse().ok()?;
        let range = |text: &str| -> Option<(i64, i64)> {
            match text.split_once('-') {
                Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                None => text.parse().ok().map(|a| (a, a)),
            }
        };
        let unacked = fields
            .next()?
            .split(',')
            .filter(|r| !r.is_empty())
            .map(range)
            .collect::<Option<Vec<_>>>()?;
        let attempts = fields
            .next()?
            .split(',')
            .filter(|r| !r.is_empty())
            .map(|entry| {
                let (r, n) = entry.split_once(':')?;
                let (a, b) = range(r)?;
                Some((a, b, n.parse().ok()?))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Progress {
            pos,
            unacked,
            attempts,
        })
    }
}

/// The metadata of a commit at `committed` for a partition read up to
/// `next` (exclusive), whose unacknowledged offsets (all at or past
/// `committed`) are `unacked` with their delivery counts, ascending.
/// Past [`MAX_METADATA`] the tail is left out: offsets past the position
/// written are then read again (delivered again if acknowledged, the
/// at-least-once way), attempts past the bound start over.
pub(crate) fn encode(next: i64, unacked: impl IntoIterator<Item = (i64, u32)>) -> String {
    let mut ranges: Vec<(i64, i64)> = Vec::new();
    let mut attempts: Vec<(i64, i64, u32)> = Vec::new();
    for (offset, delivered) in unacked {
        match ranges.last_mut() {
            Some((_, b)) if *b + 1 == offset => *b = offset,
            _ => ranges.push((offset, offset)),
        }
        if delivered > 0 {
            match attempts.last_mut() {
                Some((_, b, n)) if *b + 1 == offset && *n == delivered => *b = offset,
                _ => attempts.push((offset, offset, delivered)),
            }
        }
    }
    let mut pos = next;
    // A run of unacknowledged offsets up to `next` needs no listing.
    if let Some(&(a, b)) = ranges.last()
        && b + 1 >= next
    {
        pos = a;
        ranges.pop();
    }
    let mut text = String::with_capacity(64);
    let mut listed = String::new();
    for &(a, b) in &ranges {
        let before = listed.len();
        if !listed.is_empty() {
            listed.push(',');
        }
        write_range(&mut listed, a, b);
        if listed.len() + 32 > MAX_METADATA / 2 {
            listed.truncate(before);
            pos = a;
            break;
        }
    }
    let _ = write!(text, "{VERSION};{pos};{listed};");
    let mut first = true;
    for &(a, b, n) in &attempts {
        let before = text.len();
        if !std::mem::take(&mut first) {
            text.push(',');
        }
        write_range(&mut text, a, b);
        let _ = write!(text, ":{n}");
        if text.len() > MAX_METADATA {
            text.truncate(before);
            break;
        }
    }
    text
}

fn write_range(text: &mut String, a: i64, b: i64) {
    let _ = if a == b {
        write!(text, "{a}")
    } else {
        write!(text, "{a}-{b}")
    };
}

#[cfg(test)]
mod tests {
    use super::{Progress, encode};

    #[test]
    fn acknowledged_offsets_past_the_commit_stay_done() {
        // Committed at 10, read up to 20: 10, 12, 13 and 17 unacknowledged.
        let text = encode(20, [(10, 1), (12, 2), (13, 2), (17, 0)]);
        assert_eq!(text, "p1;20;10,12-13,17;10:1,12-13:2");
        let progress = Progress::decode(&text).unwrap();
        for offset in [11, 14, 15, 16, 18, 19] {
            assert!(progress.done(offset), "{offset}");
        }
        for offset in [10, 12, 13, 17, 20, 25] {
            assert!(!progress.done(offset), "{offset}");
        }
        assert_eq!((progress.attempts(12), progress.attempts(17)), (2, 0));
        assert!(!progress.passed(19) && progress.passed(20));
    }

    #[test]
    fn a_tail_of_unacknowledged_offsets_is_not_listed() {
        assert_eq!(
            encode(20, [(15, 0), (16, 0), (17, 0), (18, 0), (19, 0)]),
            "p1;15;;"
        );
        assert_eq!(encode(20, []), "p1;20;;");
        assert_eq!(
            Progress::decode("p1;15;;").unwrap(),
            Progress {
                pos: 15,
                ..Progress::default()
            }
        );
    }

    #[test]
    fn the_metadata_stays_bounded_and_safe() {
        // Every other offset unacknowledged: far more than fits.
        let unacked: Vec<(i64, u32)> = (0..10_000).map(|i| (i * 2, 3)).collect();
        let text = encode(20_000, unacked);
        assert!(text.len() <= super::MAX_METADATA, "{}", text.len());
        let progress = Progress::decode(&text).unwrap();
        // Nothing unacknowledged is ever taken for done.
        assert!((0..20_000).step_by(2).all(|o| !progress.done(o)));
        assert!(progress.done(1));
        assert_eq!(progress.attempts(0), 3);
    }

    #[test]
    fn other_metadata_is_no_progress() {
        for text in ["", "hello", "p1;x;;", "p2;1;;", "p1;1;a;"] {
            assert_eq!(Progress::decode(text), None, "{text}");
        }
    }
}
