//! Appending a batch: multi-row INSERTs of fixed sizes (each a cached
//! prepared statement), after the topic's capacity check.

use plexus_core::Message;
use plexus_core::bus::BusError;

use super::Writer;
use crate::row::{headers_column, time_columns};

/// Rows per INSERT statement, largest first: a batch is written as a few
/// statements of these sizes (SQLite binds at most 32,766 parameters).
const CHUNKS: [usize; 5] = [256, 64, 16, 4, 1];

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
                    "INSERT INTO plexus_messages (topic_id, id, source, type, subject, time_s, time_ns, datacontenttype, key, headers, payload) VALUES {}",
                    vec![row; rows].join(", ")
                );
                (rows, sql)
            })
            .collect();
        Statements { inserts }
    }
}

impl Writer {
    /// Appends `batch` to `topic`. The outer error aborts the transaction;
    /// the inner one refuses this batch only (the topic is full).
    pub(super) async fn publish(
        &mut self,
        topic: &str,
        batch: &[Message],
    ) -> Result<Result<(), BusError>, BusError> {
        let topic_id = self.topic_id(topic).await?;
        let doing = || format!("publishing to topic `{topic}`");
        let count = batch.len() as i64;
        let retained: i64 = sqlx::query_scalar(
            "UPDATE plexus_topics SET retained = retained + ?1 WHERE id = ?2 RETURNING retained",
        )
        .bind(count)
        .bind(topic_id)
        .fetch_one(&mut self.connection)
        .await
        .map_err(|e| self.error(&doing(), &e))?;
        let capacity = i64::try_from(self.config.topic_capacity).unwrap_or(i64::MAX);
        if retained > capacity && self.has_groups(topic_id).await? {
            sqlx::query("UPDATE plexus_topics SET retained = retained - ?1 WHERE id = ?2")
                .bind(count)
                .bind(topic_id)
                .execute(&mut self.connection)
                .await
                .map_err(|e| self.error(&doing(), &e))?;
            return Ok(Err(BusError::Full {
                topic: topic.to_owned(),
                reason: format!(
                    "it retains {} messages not yet acknowledged by every group, and {count} more would pass its capacity of {capacity} (SqliteConfig::topic_capacity)",
                    retained - count
                ),
            }));
        }
        let mut rest = batch;
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
                let (secs, nanos) = time_columns(message.time());
                query = query
                    .bind(topic_id)
                    .bind(message.id())
                    .bind(message.source())
                    .bind(message.ty())
                    .bind(message.subject())
                    .bind(secs)
                    .bind(nanos)
                    .bind(message.data_content_type())
                    .bind(message.key())
                    .bind(headers_column(message))
                    .bind(message.payload().as_ref());
            }
            query
                .execute(&mut self.connection)
                .await
                .map_err(|e| self.error(&doing(), &e))?;
            rest = tail;
        }
        self.effects.wake.insert(topic.into());
        Ok(Ok(()))
    }

    async fn has_groups(&mut self, topic_id: i64) -> Result<bool, BusError> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM plexus_groups WHERE topic_id = ?1)")
            .bind(topic_id)
            .fetch_one(&mut self.connection)
            .await
            .map_err(|e| self.error("looking up the groups of a topic", &e))
    }
}
