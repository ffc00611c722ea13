//! Acks and nacks: every answer of one commit in one statement per kind
//! (the answers travel as a JSON array of rows), so a commit costs the
//! same few statements however many deliveries it answers.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use plexus_core::bus::BusError;

use super::{Writer, millis};

/// One delivery's answer.
pub(super) struct Answer<'a> {
    pub(super) topic: &'a Arc<str>,
    pub(super) group_id: i64,
    pub(super) seq: i64,
    pub(super) attempt: u32,
    /// The message has a key (acking it may free the next of its key).
    pub(super) keyed: bool,
    /// `None`: ack; `Some(delay)`: nack, deliverable again after it.
    pub(super) nack: Option<Duration>,
}

/// Deletes the acknowledged deliveries that are still the current lease
/// of their message (a stale answer, whose message was delivered again
/// since or whose group is gone, matches nothing).
const ACK: &str = "
DELETE FROM plexus_pending
WHERE (group_id, seq, attempt) IN (
    SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?1))";

/// Returns the nacked deliveries that are still current, deliverable
/// again from their due time.
const NACK: &str = "
UPDATE plexus_pending SET due_ms = j.value ->> 3, owner = NULL
FROM json_each(?1) AS j
WHERE plexus_pending.group_id = j.value ->> 0
  AND plexus_pending.seq = j.value ->> 1
  AND plexus_pending.attempt = j.value ->> 2";

impl Writer {
    /// Applies `answers`: one statement for the acks, one for the nacks.
    pub(super) async fn answer(
        &mut self,
        answers: &[Answer<'_>],
        now: i64,
    ) -> Result<(), BusError> {
        let mut acks = String::from("[");
        let mut nacks = String::from("[");
        for answer in answers {
            let (list, due) = match answer.nack {
                None => (&mut acks, None),
                Some(delay) => (&mut nacks, Some(now.saturating_add(millis(delay)))),
            };
            if list.len() > 1 {
                list.push(',');
            }
            let _ = write!(
                list,
                "[{},{},{}",
                answer.group_id, answer.seq, answer.attempt
            );
            if let Some(due) = due {
                let _ = write!(list, ",{due}");
            }
            list.push(']');
            // Acking a keyed message frees the next one of its key; a nack
            // makes its message deliverable again.
            if answer.keyed || answer.nack.is_some() {
                self.effects.wake.insert(Arc::clone(answer.topic));
            }
        }
        for (sql, list, doing) in [
            (ACK, acks, "acknowledging"),
            (NACK, nacks, "returning (nack)"),
        ] {
            if list.len() == 1 {
                continue;
            }
            let list = list + "]";
            sqlx::query(sql)
                .bind(list)
                .execute(&mut self.connection)
                .await
                .map_err(|e| {
                    self.error(&format!("{doing} deliveries of {}", topics(answers)), &e)
                })?;
        }
        Ok(())
    }
}

/// The topics of `answers`, for an error.
fn topics(answers: &[Answer<'_>]) -> String {
    let names: BTreeSet<&str> = answers.iter().map(|a| a.topic.as_ref()).collect();
    let shown: Vec<String> = names.iter().take(5).map(|t| format!("`{t}`")).collect();
    let more = names.len().saturating_sub(shown.len());
    let mut text = format!("topic {}", shown.join(", "));
    if more > 0 {
        let _ = write!(text, " and {more} more");
    }
    text
}
