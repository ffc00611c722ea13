//! Runs: the new messages without a key that one claim leased together,
//! stored as one `plexus_runs` row (see [`crate::schema`]) instead of a
//! pending row each. Acks of a run's messages go into its row; anything
//! else (an expired lease, a nack, the bus closing) first explodes the
//! run into pending rows, which the usual statements then handle.
//!
//! The writer remembers which runs it leased ([`Runs`]) to route its
//! members' acks; that memory changes only once a transaction commits,
//! and a run another process exploded is found out when its ack matches
//! no row (the ack then goes to the pending rows).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use plexus_core::bus::BusError;
use sqlx::Row;

use super::Writer;

/// The runs this writer leased and saw committed, per group by first
/// seq.
#[derive(Debug, Default)]
pub(super) struct Runs {
    by_group: HashMap<i64, BTreeMap<i64, Run>>,
}

/// A run's messages and which of them are acknowledged.
#[derive(Debug, Clone)]
pub(super) struct Run {
    /// The seqs, ascending.
    members: Vec<i64>,
    acked: Vec<bool>,
    /// The index of the first unacknowledged member.
    low: usize,
    remaining: usize,
}

impl Run {
    fn new(members: Vec<i64>) -> Self {
        Run {
            acked: vec![false; members.len()],
            remaining: members.len(),
            low: 0,
            members,
        }
    }

    /// This run with `seqs` acknowledged too.
    fn with_acks(&self, seqs: &[i64]) -> Run {
        let mut run = self.clone();
        for seq in seqs {
            if let Ok(i) = run.members.binary_search(seq)
                && !run.acked[i]
            {
                run.acked[i] = true;
                run.remaining -= 1;
            }
        }
        while run.acked.get(run.low) == Some(&true) {
            run.low += 1;
        }
        run
    }

    /// The row's `[low_seq, remaining, acked]` as JSON.
    fn row_state(&self) -> String {
        let low_seq = self
            .members
            .get(self.low)
            .copied()
            .unwrap_or_else(|| self.members.last().map_or(0, |last| last + 1));
        let mut state = format!("{low_seq},{},[", self.remaining);
        let mut any = false;
        for (seq, acked) in self.members.iter().zip(&self.acked).skip(self.low) {
            if *acked {
                if any {
                    state.push(',');
                }
                let _ = write!(state, "{seq}");
                any = true;
            }
        }
        state.push(']');
        state
    }
}

impl Runs {
    /// The first seq of the run that holds message `seq` of `group`
    /// (a message without a key, at its first attempt).
    pub(super) fn find(&self, group_id: i64, seq: i64) -> Option<i64> {
        let (first, run) = self.by_group.get(&group_id)?.range(..=seq).next_back()?;
        run.members.binary_search(&seq).ok().map(|_| *first)
    }

    fn remove(&mut self, group_id: i64, first: i64) {
        if let Some(runs) = self.by_group.get_mut(&group_id) {
            runs.remove(&first);
            if runs.is_empty() {
                self.by_group.remove(&group_id);
            }
        }
    }

    /// Applies a committed transaction's run changes.
    pub(super) fn apply(&mut self, changes: RunChanges) {
        for (group_id, first, run) in changes.set {
            self.by_group
                .entry(group_id)
                .or_default()
                .insert(first, run);
        }
        for (group_id, first) in changes.gone {
            self.remove(group_id, first);
        }
        for group_id in changes.groups_gone {
            self.by_group.remove(&group_id);
        }
    }
}

/// One transaction's changes to [`Runs`].
#[derive(Debug, Default)]
pub(super) struct RunChanges {
    /// New runs, and runs with more acknowledged.
    set: Vec<(i64, i64, Run)>,
    pub(super) gone: Vec<(i64, i64)>,
    pub(super) groups_gone: Vec<i64>,
}

/// Stores the acks of the runs in ?1 (JSON rows of group, first seq,
/// low seq, remaining and the acknowledged seqs past the low one);
/// returns the runs found.
const ACK_RUNS: &str = "
UPDATE plexus_runs
SET low_seq = j.value ->> 2, remaining = j.value ->> 3, acked = j.value -> 4
FROM json_each(?1) AS j
WHERE plexus_runs.group_id = j.value ->> 0 AND plexus_runs.first_seq = j.value ->> 1
RETURNING group_id, first_seq";

/// Deletes the runs in ?1 (JSON rows of group and first seq); returns
/// those found.
const DELETE_RUNS: &str = "
DELETE FROM plexus_runs
WHERE (group_id, first_seq) IN (SELECT value ->> 0, value ->> 1 FROM json_each(?1))
RETURNING group_id, first_seq";

/// The two statements exploding the runs that `$filter` (over `r`)
/// selects: the unacknowledged messages become pending rows with the
/// run's lease (attempt 1), then the runs go.
macro_rules! explode {
    ($name:ident, $filter:literal) => {
        const $name: [&str; 2] = [
            concat!(
                "INSERT INTO plexus_pending (group_id, seq, key, attempt, due_ms, owner)
                 SELECT r.group_id, m.seq, NULL, 1, r.due_ms, r.owner
                 FROM plexus_runs r
                 JOIN plexus_groups g ON g.id = r.group_id
                 JOIN plexus_messages m
                   ON m.topic_id = g.topic_id AND m.seq BETWEEN r.first_seq AND r.last_seq
                 WHERE ",
                $filter,
                " AND m.key IS NULL AND m.seq >= r.low_seq
                   AND m.seq NOT IN (SELECT value FROM json_each(r.acked))"
            ),
            concat!(
                "DELETE FROM plexus_runs AS r WHERE ",
                $filter,
                " RETURNING group_id, first_seq"
            ),
        ];
    };
}

explode!(EXPLODE_EXPIRED, "r.group_id = ?1 AND r.due_ms <= ?2");
explode!(
    EXPLODE_LISTED,
    "r.group_id = ?1 AND r.first_seq IN (SELECT value FROM json_each(?2))"
);
explode!(EXPLODE_OWNED, "r.owner = ?1 AND r.due_ms > ?2");

/// Which runs to explode.
#[derive(Debug, Clone, Copy)]
pub(super) enum Explode<'a> {
    /// A group's runs whose lease ran out by `now`.
    Expired { group_id: i64, now: i64 },
    /// A group's runs with these first seqs (a JSON list).
    Listed { group_id: i64, firsts: &'a str },
    /// This writer's runs still leased at `now` (the bus is closing).
    Owned { now: i64 },
}

impl Writer {
    /// Stores a run leased by a claim (due `due`; `seqs` ascending) and
    /// remembers it once committed.
    pub(super) async fn add_run(
        &mut self,
        group_id: i64,
        seqs: &[i64],
        due: i64,
    ) -> Result<(), BusError> {
        let (Some(&first), Some(&last)) = (seqs.first(), seqs.last()) else {
            return Ok(());
        };
        sqlx::query(
            "INSERT INTO plexus_runs (group_id, first_seq, last_seq, low_seq, remaining, due_ms, owner)
             VALUES (?1, ?2, ?3, ?2, ?4, ?5, ?6)",
        )
        .bind(group_id)
        .bind(first)
        .bind(last)
        .bind(i64::try_from(seqs.len()).unwrap_or(i64::MAX))
        .bind(due)
        .bind(self.instance)
        .execute(&mut self.connection)
        .await
        .map_err(|e| self.error("leasing new messages to a group", &e))?;
        self.effects
            .runs
            .set
            .push((group_id, first, Run::new(seqs.to_vec())));
        Ok(())
    }

    /// Stores acks of run members (`(group, first)` → seqs); returns the
    /// `(group, seq)` of those whose run is gone (another process
    /// exploded it), for the pending rows.
    pub(super) async fn ack_runs(
        &mut self,
        acks: &BTreeMap<(i64, i64), Vec<i64>>,
    ) -> Result<Vec<(i64, i64)>, BusError> {
        let doing = "acknowledging deliveries";
        let mut updated = String::from("[");
        let mut complete = String::from("[");
        for (&(group_id, first), seqs) in acks {
            let Some(run) = self
                .runs
                .by_group
                .get(&group_id)
                .and_then(|runs| runs.get(&first))
            else {
                continue;
            };
            let run = run.with_acks(seqs);
            let list = if run.remaining == 0 {
                &mut complete
            } else {
                &mut updated
            };
            if list.len() > 1 {
                list.push(',');
            }
            if run.remaining == 0 {
                let _ = write!(list, "[{group_id},{first}]");
                self.effects.runs.gone.push((group_id, first));
            } else {
                let _ = write!(list, "[{group_id},{first},{}]", run.row_state());
                self.effects.runs.set.push((group_id, first, run));
            }
        }
        let mut found: Vec<(i64, i64)> = Vec::new();
        for (sql, list) in [(ACK_RUNS, updated), (DELETE_RUNS, complete)] {
            if list.len() == 1 {
                continue;
            }
            let rows = sqlx::query(sql)
                .bind(list + "]")
                .fetch_all(&mut self.connection)
                .await
                .map_err(|e| self.error(doing, &e))?;
            for row in rows {
                let run = (|| Ok::<_, sqlx::Error>((row.try_get(0)?, row.try_get(1)?)))()
                    .map_err(|e| self.error(doing, &e))?;
                found.push(run);
            }
        }
        let mut gone = Vec::new();
        for run in acks.keys() {
            if !found.contains(run) {
                self.effects.runs.gone.push(*run);
                gone.extend(acks[run].iter().map(|seq| (run.0, *seq)));
            }
        }
        Ok(gone)
    }

    /// Explodes the runs `which` selects into pending rows.
    pub(super) async fn explode(&mut self, which: Explode<'_>) -> Result<(), BusError> {
        let doing = "returning leased messages";
        let (statements, first): (&[&str; 2], i64) = match which {
            Explode::Expired { group_id, .. } => (&EXPLODE_EXPIRED, group_id),
            Explode::Listed { group_id, .. } => (&EXPLODE_LISTED, group_id),
            Explode::Owned { .. } => (&EXPLODE_OWNED, self.instance),
        };
        let bind = |sql: &'static str| {
            let query = sqlx::query(sql).bind(first);
            match which {
                Explode::Expired { now, .. } | Explode::Owned { now } => query.bind(now),
                Explode::Listed { firsts, .. } => query.bind(firsts.to_owned()),
            }
        };
        let inserted = bind(statements[0])
            .execute(&mut self.connection)
            .await
            .map_err(|e| self.error(doing, &e))?
            .rows_affected();
        // A run always has an unacknowledged message (the last ack
        // deletes it): nothing inserted, no run selected.
        if inserted == 0 {
            return Ok(());
        }
        let deleted = bind(statements[1])
            .fetch_all(&mut self.connection)
            .await
            .map_err(|e| self.error(doing, &e))?;
        for row in deleted {
            let run: (i64, i64) = (|| Ok::<_, sqlx::Error>((row.try_get(0)?, row.try_get(1)?)))()
                .map_err(|e| self.error(doing, &e))?;
            self.effects.runs.gone.push(run);
        }
        Ok(())
    }
}
