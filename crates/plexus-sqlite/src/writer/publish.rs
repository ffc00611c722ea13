//! Appending batches: every publish to one topic in a commit is written
//! together, after one capacity check, as a few multi-row INSERTs of fixed
//! sizes (each a cached prepared statement). The appended messages go to
//! the writer's cache, so claims hand them out without reading them back.

use plexus_core::Message;
use plexus_core::bus::BusError;

use super::Writer;
use crate::row::{INSERT_COLUMNS, bind_message};

/// Rows per INSERT statement, largest first: a batch is written as at
/// most one statement of each size (SQLite binds at most 32,766
/// parameters: 2,978 rows of 11).
const CHUNKS: [usize; 12] = [2048, 1024, 512, 256, 128, 64, 32, 16, 8, 4, 2, 1];

/// Columns bound per message.
const COLUMNS_PER_ROW: usize = 11;

/// The INSERT statement for each chunk size.
pub(super) struct Statements {
    inserts: Vec<(usize, String)>,
}

impl Statements {
    pub(super) fn new() -> Self {
        let inserts = CHUNKS
            .iter()
            .map(|&rows| {
                let row = format!("({})", ["?"; COLUMNS_PER_ROW].join(", "));
                let sql = format!(
                    "INSERT INTO plexus_messages ({INSERT_COLUMNS}) VALUES {}",
                    vec![row; rows].join(", ")
                );
                (rows, sql)
            })
            .collect();
        Statements { inserts }
    }
}

impl Writer {
    /// Appends `batches` (the publishes of one commit to `topic`, in
    /// order). The outer error aborts the transaction; an inner one
    /// refuses that batch only (the topic is full).
    pub(super) async fn publish(
        &mut self,
        topic: &str,
        batches: &[&[Message]],
    ) -> Result<Vec<Result<(), BusError>>, BusError> {
        let topic_id = self.topic_id(topic).await?;
        let doing = || format!("publishing to topic `{topic}`");
        let total: i64 = batches.iter().map(|b| b.len() as i64).sum();
        let retained: i64 = sqlx::query_scalar(
            "UPDATE plexus_topics SET retained = retained + ?1 WHERE id = ?2 RETURNING retained",
        )
        .bind(total)
        .bind(topic_id)
        .fetch_one(&mut self.connection)
        .await
        .map_err(|e| self.error(&doing(), &e))?;
        let capacity = i64::try_from(self.config.topic_capacity).unwrap_or(i64::MAX);
        let mut results: Vec<Result<(), BusError>> = batches.iter().map(|_| Ok(())).collect();
        if retained > capacity && self.has_groups(topic_id).await? {
            // Accept the batches in order while they fit; refuse the rest.
            let mut held = retained - total;
            let mut refused = 0i64;
            for (batch, result) in batches.iter().zip(&mut results) {
                let count = batch.len() as i64;
                if held + count <= capacity {
                    held += count;
                    continue;
                }
                refused += count;
                *result = Err(BusError::Full {
                    topic: topic.to_owned(),
                    reason: format!(
                        "it retains {} messages not yet acknowledged by every group, and {count} more would pass its capacity of {capacity} (SqliteConfig::topic_capacity)",
                        held
                    ),
                });
            }
            sqlx::query("UPDATE plexus_topics SET retained = retained - ?1 WHERE id = ?2")
                .bind(refused)
                .bind(topic_id)
                .execute(&mut self.connection)
                .await
                .map_err(|e| self.error(&doing(), &e))?;
        }
        let accepted: Vec<&Message> = batches
            .iter()
            .zip(&results)
            .filter(|(_, result)| result.is_ok())
            .flat_map(|(batch, _)| batch.iter())
            .collect();
        let mut rest = accepted.as_slice();
        while !rest.is_empty() {
            let (rows, sql) = self
                .publish
                .inserts
                .iter()
                .find(|(rows, _)| *rows <= rest.len())
                .expect("the smallest chunk is one row");
            let (chunk, tail) = rest.split_at(*rows);
            let mut query = sqlx::query(sql.as_str());
            for message in chunk {
                query = bind_message(query, topic_id, message);
            }
            let done = query
                .execute(&mut self.connection)
                .await
                .map_err(|e| self.error(&doing(), &e))?;
            // One statement holding the write lock gives its rows
            // consecutive seqs (AUTOINCREMENT): the last is reported.
            let first = done.last_insert_rowid() - (chunk.len() as i64 - 1);
            self.cache.extend(first, chunk.iter().copied());
            rest = tail;
        }
        if !accepted.is_empty() {
            self.effects.wake.insert(topic.into());
        }
        Ok(results)
    }

    async fn has_groups(&mut self, topic_id: i64) -> Result<bool, BusError> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM plexus_groups WHERE topic_id = ?1)")
            .bind(topic_id)
            .fetch_one(&mut self.connection)
            .await
            .map_err(|e| self.error("looking up the groups of a topic", &e))
    }
}
