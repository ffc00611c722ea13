//! Publishing: a batch is one multi-row INSERT (one array per column), so
//! it commits whole or not at all; the topic's subscribers are woken after
//! the commit (this bus's own at once, the others by a notification).

use plexus_core::Message;
use plexus_core::bus::{BusError, check_topic, message_size};

use sqlx::Postgres;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;

use super::Shared;
use super::row::Columns;
use super::statements::Inserts;
use crate::PostgresConfig;

/// Publishes `batch` to `topic` (see [`Publisher::publish`]).
///
/// [`Publisher::publish`]: plexus_core::bus::Publisher::publish
pub(crate) async fn publish(
    shared: &Shared,
    topic: &str,
    batch: Vec<Message>,
) -> Result<(), BusError> {
    if shared.closed.is_cancelled() {
        return Err(shared.closed_error("publisher"));
    }
    let Some(columns) = checked(&shared.config, &shared.name, topic, &batch)? else {
        return Ok(());
    };
    insert(&shared.sql.publish, topic, &columns)
        .execute(&shared.pool)
        .await
        .map_err(|e| {
            shared.failed(
                &format!("publishing {} messages to topic `{topic}`", batch.len()),
                e,
                "publisher",
            )
        })?;
    // This bus's own members of the topic are woken at once; the others
    // (other buses, other processes) by the notification.
    shared.wakes.wake(topic);
    shared.notifier.published(topic);
    Ok(())
}

/// Checks `batch` for `topic` against the bounds of `config` (the bus
/// `name` in errors): its columns, or `None` for an empty batch.
pub(crate) fn checked<'a>(
    config: &PostgresConfig,
    name: &str,
    topic: &str,
    batch: &'a [Message],
) -> Result<Option<Columns<'a>>, BusError> {
    check_topic(topic)?;
    let limit = config.max_message_bytes;
    let mut bytes = 0usize;
    for message in batch {
        let size = message_size(message);
        if size > limit {
            return Err(BusError::TooLarge {
                backend: name.to_owned(),
                topic: topic.to_owned(),
                id: message.id().to_owned(),
                size,
                limit,
            });
        }
        bytes += size;
    }
    if batch.is_empty() {
        return Ok(None);
    }
    if batch.len() > config.max_batch_messages {
        return Err(BusError::Full {
            topic: topic.to_owned(),
            reason: format!(
                "a batch of {} messages is more than one publish may carry ({}, PostgresConfig::max_batch_messages); split it",
                batch.len(),
                config.max_batch_messages
            ),
        });
    }
    if bytes > config.max_batch_bytes {
        return Err(BusError::Full {
            topic: topic.to_owned(),
            reason: format!(
                "a batch of {bytes} bytes is more than one publish may carry ({}, PostgresConfig::max_batch_bytes); split it",
                config.max_batch_bytes
            ),
        });
    }
    Columns::of(batch).map(Some).map_err(|(id, reason)| {
        BusError::invalid(
            "time",
            format!("message `{id}` on topic `{topic}`: {reason} (years -9999 to 9999)"),
        )
    })
}

/// The INSERT of `columns` into `topic` (more parameters may follow):
/// a single message in the form of one row of values, more as arrays.
pub(crate) fn insert<'q>(
    sql: &'q Inserts,
    topic: &'q str,
    columns: &'q Columns<'q>,
) -> Query<'q, Postgres, PgArguments> {
    match columns.single() {
        Some(one) => sqlx::query(&sql.one)
            .bind(topic)
            .bind(one.id)
            .bind(one.source)
            .bind(one.ty)
            .bind(one.subject)
            .bind(one.time)
            .bind(one.content_type)
            .bind(one.key)
            .bind(one.headers)
            .bind(one.data),
        None => sqlx::query(&sql.many)
            .bind(topic)
            .bind(&columns.ids)
            .bind(&columns.sources)
            .bind(&columns.types)
            .bind(&columns.subjects)
            .bind(&columns.times)
            .bind(&columns.content_types)
            .bind(&columns.keys)
            .bind(&columns.headers)
            .bind(&columns.data),
    }
}
