//! Taking new messages of a topic into a group: the next ones past the
//! group's cursor become pending in it, leased at once unless their key
//! has an earlier message pending (then they wait for their turn).

use std::collections::HashSet;

use plexus_core::bus::BusError;

use super::Writer;
use super::group::WAITING;

/// The next messages of the topic past the group's cursor (at most ?3,
/// and no more than the group's window ?4 has room for), as one JSON
/// array: a seq for a message without a key, `[seq, key]` for one with.
/// One row however many are picked (rows are costly to return one by
/// one). The group's unacknowledged messages (pending rows and runs'
/// messages) are counted only when the window could be short of room:
/// the lowest of them is less than `?4 - ?3` behind the cursor otherwise.
const PICK: &str = "
SELECT json_group_array(CASE WHEN key IS NULL THEN seq ELSE json_array(seq, key) END)
FROM (SELECT seq, key FROM plexus_messages
      WHERE topic_id = ?2 AND seq > (SELECT cursor FROM plexus_groups WHERE id = ?1)
      ORDER BY seq
      LIMIT (SELECT CASE
                 WHEN g.cursor + 1 + ?3 - min(
                          coalesce((SELECT min(seq) FROM plexus_pending WHERE group_id = ?1), g.cursor),
                          coalesce((SELECT min(low_seq) FROM plexus_runs WHERE group_id = ?1), g.cursor)
                      ) <= ?4
                 THEN ?3
                 ELSE max(0, min(?3, ?4
                     - (SELECT count(*) FROM plexus_pending WHERE group_id = ?1)
                     - (SELECT coalesce(sum(remaining), 0) FROM plexus_runs WHERE group_id = ?1)))
             END
             FROM plexus_groups g WHERE g.id = ?1))";

/// Of the keys ?2 (a JSON list), those with a message pending in group ?1.
const BUSY_KEYS: &str = "
SELECT json_group_array(j.value) FROM json_each(?2) AS j
WHERE EXISTS (SELECT 1 FROM plexus_pending q WHERE q.group_id = ?1 AND q.key = j.value)";

/// Takes the picked messages into the group's pending set; ?2 is a JSON
/// list of seqs (no key) and `[seq, key]` pairs, the seq positive for
/// those leased at once (attempt 1, due ?3, owner ?4) and negated for
/// those that wait for their key ([`WAITING`], ?5). The keys travel with
/// the seqs, so the messages are not read again.
const TAKE: &str = "
INSERT INTO plexus_pending (group_id, seq, key, attempt, due_ms, owner)
SELECT ?1, abs(s), k, s > 0, CASE WHEN s > 0 THEN ?3 ELSE ?5 END, CASE WHEN s > 0 THEN ?4 END
FROM (SELECT CASE j.type WHEN 'array' THEN j.value ->> 0 ELSE j.value END AS s,
             CASE j.type WHEN 'array' THEN j.value ->> 1 END AS k
      FROM json_each(?2) AS j)";

/// What [`Writer::take`] leased.
#[derive(Debug, Default)]
pub(super) struct Taken {
    /// `(seq, attempt)` of those leased with a pending row each (keyed).
    pub(super) rows: Vec<(i64, u32)>,
    /// The seqs of the run leased (messages without a key), in order.
    pub(super) run: Vec<i64>,
}

/// One picked message.
#[derive(Debug)]
struct Picked {
    seq: i64,
    key: Option<String>,
}

impl Writer {
    /// Takes the next messages of the topic into the group ([`PICK`];
    /// those without a key as one run, the others with [`TAKE`]; then
    /// the cursor): what it leased.
    pub(super) async fn take(
        &mut self,
        topic_id: i64,
        group_id: i64,
        due: i64,
        max: usize,
    ) -> Result<Taken, BusError> {
        let doing = "taking messages into a group";
        let picked: String = sqlx::query_scalar(PICK)
            .bind(group_id)
            .bind(topic_id)
            .bind(i64::try_from(max).unwrap_or(i64::MAX))
            .bind(i64::try_from(self.config.group_window).unwrap_or(i64::MAX))
            .fetch_one(&mut self.connection)
            .await
            .map_err(|e| self.error(doing, &e))?;
        let picked = parse_picked(&picked).map_err(|reason| {
            BusError::backend(
                self.name.as_ref(),
                format!("{doing} failed: the picked messages `{picked:.80}` {reason}"),
            )
        })?;
        let Some(cursor) = picked.last().map(|p| p.seq) else {
            return Ok(Taken::default());
        };
        let run: Vec<i64> = picked
            .iter()
            .filter(|p| p.key.is_none())
            .map(|p| p.seq)
            .collect();
        self.add_run(group_id, &run, due).await?;
        let busy = self.busy_keys(group_id, &picked).await?;
        // A message waits when its key has one pending, or one picked
        // before it.
        let mut seen: HashSet<&str> = HashSet::new();
        let signed: Vec<(i64, Option<&str>)> = picked
            .iter()
            .filter_map(|p| {
                let key = p.key.as_deref()?;
                Some(if busy.contains(key) || !seen.insert(key) {
                    (-p.seq, Some(key))
                } else {
                    (p.seq, Some(key))
                })
            })
            .collect();
        if !signed.is_empty() {
            let list = take_list(&signed);
            sqlx::query(TAKE)
                .bind(group_id)
                .bind(&list)
                .bind(due)
                .bind(self.instance)
                .bind(WAITING)
                .execute(&mut self.connection)
                .await
                .map_err(|e| self.error(doing, &e))?;
        }
        sqlx::query("UPDATE plexus_groups SET cursor = ?2 WHERE id = ?1 AND cursor < ?2")
            .bind(group_id)
            .bind(cursor)
            .execute(&mut self.connection)
            .await
            .map_err(|e| self.error(doing, &e))?;
        let rows = signed
            .into_iter()
            .filter(|(seq, _)| *seq > 0)
            .map(|(seq, _)| (seq, 1))
            .collect();
        Ok(Taken { rows, run })
    }

    /// The keys of `picked` that have a message pending in the group.
    async fn busy_keys(
        &mut self,
        group_id: i64,
        picked: &[Picked],
    ) -> Result<HashSet<String>, BusError> {
        let mut keys: Vec<&str> = picked.iter().filter_map(|p| p.key.as_deref()).collect();
        if keys.is_empty() {
            return Ok(HashSet::new());
        }
        keys.sort_unstable();
        keys.dedup();
        let keys = serde_json::to_string(&keys).expect("a list of strings serializes");
        let busy: String = sqlx::query_scalar(BUSY_KEYS)
            .bind(group_id)
            .bind(keys)
            .fetch_one(&mut self.connection)
            .await
            .map_err(|e| self.error("looking up the pending keys of a group", &e))?;
        serde_json::from_str(&busy).map_err(|e| {
            BusError::backend(
                self.name.as_ref(),
                format!(
                    "the pending keys `{busy:.80}` of a group are not a JSON list of strings: {e}"
                ),
            )
        })
    }
}

/// [`TAKE`]'s list: a seq for a message without a key, `[seq, key]` for
/// one with.
fn take_list(signed: &[(i64, Option<&str>)]) -> String {
    let values: Vec<serde_json::Value> = signed
        .iter()
        .map(|&(seq, key)| match key {
            None => seq.into(),
            Some(key) => serde_json::json!([seq, key]),
        })
        .collect();
    serde_json::to_string(&values).expect("seqs and keys serialize")
}

/// Reads [`PICK`]'s list: seqs, or `[seq, key]` pairs.
fn parse_picked(text: &str) -> Result<Vec<Picked>, String> {
    let values: Vec<serde_json::Value> =
        serde_json::from_str(text).map_err(|e| format!("are not a JSON list: {e}"))?;
    values
        .into_iter()
        .map(|value| match value {
            serde_json::Value::Number(n) => n
                .as_i64()
                .map(|seq| Picked { seq, key: None })
                .ok_or_else(|| format!("hold `{n}`, not a seq")),
            serde_json::Value::Array(pair) => match pair.as_slice() {
                [serde_json::Value::Number(n), serde_json::Value::String(key)] => n
                    .as_i64()
                    .map(|seq| Picked {
                        seq,
                        key: Some(key.clone()),
                    })
                    .ok_or_else(|| format!("hold `{n}`, not a seq")),
                _ => Err(format!("hold `{pair:?}`, not a [seq, key] pair")),
            },
            other => Err(format!(
                "hold `{other}`, neither a seq nor a [seq, key] pair"
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::parse_picked;

    #[test]
    fn picked_lists_hold_seqs_and_keyed_pairs() {
        let picked = parse_picked(r#"[4,[5,"k1"],6]"#).unwrap();
        let read: Vec<(i64, Option<&str>)> =
            picked.iter().map(|p| (p.seq, p.key.as_deref())).collect();
        assert_eq!(read, [(4, None), (5, Some("k1")), (6, None)]);
        assert!(parse_picked(r#"[4,"x"]"#).unwrap_err().contains("neither"));
        assert!(parse_picked("[[5]]").unwrap_err().contains("pair"));
        assert!(parse_picked("{").unwrap_err().contains("JSON"));
        assert_eq!(
            super::take_list(&[(4, None), (-5, Some("k\"1"))]),
            r#"[4,[-5,"k\"1"]]"#
        );
    }
}
