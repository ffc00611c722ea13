//! Ack deadlines that count from the handover, not from the claim.
//!
//! A claim leases messages inside a transaction, but the member receives
//! them only once that transaction has committed (after its fsync). A
//! lease due at `claim time + ack deadline` would give the member less
//! than its ack deadline, and under a slow commit another member could be
//! handed the message while the first still holds it. So a lease is
//! stored due [`LEASE_PAD_MS`] later than that; after the commit, the
//! leases of a commit that took longer than the pad allows are moved to
//! `commit end + ack deadline + HANDOVER_SLACK_MS` at the start of the
//! writer's next transaction, before any claim of it can see them. Claims
//! of other processes sharing the file could still see the earlier due
//! if this writer stays idle past it; the extensions are lost, like
//! returns, if that transaction fails.

use plexus_core::bus::BusError;

use super::{Writer, now_ms};

/// How much later than `claim time + ack deadline` a lease is stored due.
pub(super) const LEASE_PAD_MS: i64 = 25;
/// How long after the commit a member may take to receive its deliveries.
const HANDOVER_SLACK_MS: i64 = 10;

/// Leases a claim in the open transaction handed out.
pub(super) struct Leased {
    pub(super) group_id: i64,
    pub(super) due: i64,
    pub(super) ack_deadline_ms: i64,
    /// The leased messages with a pending row each.
    pub(super) seqs: Vec<i64>,
    /// The first seq of the run the claim leased, if it did.
    pub(super) run: Option<i64>,
}

/// Leases to move to a later due.
pub(super) struct Extension {
    group_id: i64,
    from: i64,
    to: i64,
    /// The leased messages with a pending row each (a JSON list), if any.
    seqs: Option<String>,
    run: Option<i64>,
}

/// The extensions that the leases of a commit ending now need.
pub(super) fn extensions(leased: Vec<Leased>) -> impl Iterator<Item = Extension> {
    let end = now_ms();
    leased.into_iter().filter_map(move |l| {
        let to = end
            .saturating_add(l.ack_deadline_ms)
            .saturating_add(HANDOVER_SLACK_MS);
        (to > l.due && (!l.seqs.is_empty() || l.run.is_some())).then(|| Extension {
            group_id: l.group_id,
            from: l.due,
            to,
            seqs: (!l.seqs.is_empty())
                .then(|| serde_json::to_string(&l.seqs).expect("a list of integers serializes")),
            run: l.run,
        })
    })
}

impl Writer {
    /// Moves the pending extensions' leases (those still unanswered: still
    /// due when they were) to their later due.
    pub(super) async fn extend_leases(&mut self) -> Result<(), BusError> {
        for extension in std::mem::take(&mut self.extensions) {
            if let Some(first) = extension.run {
                sqlx::query(
                    "UPDATE plexus_runs SET due_ms = ?3
                     WHERE group_id = ?1 AND first_seq = ?4 AND due_ms = ?2",
                )
                .bind(extension.group_id)
                .bind(extension.from)
                .bind(extension.to)
                .bind(first)
                .execute(&mut self.connection)
                .await
                .map_err(|e| self.error("extending leases to their handover", &e))?;
            }
            let Some(seqs) = extension.seqs else {
                continue;
            };
            sqlx::query(
                "UPDATE plexus_pending SET due_ms = ?3
                 WHERE group_id = ?1 AND due_ms = ?2
                   AND seq IN (SELECT value FROM json_each(?4))",
            )
            .bind(extension.group_id)
            .bind(extension.from)
            .bind(extension.to)
            .bind(seqs)
            .execute(&mut self.connection)
            .await
            .map_err(|e| self.error("extending leases to their handover", &e))?;
        }
        Ok(())
    }
}
