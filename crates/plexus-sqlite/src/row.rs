//! A message as the columns of `plexus_messages`, and back.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use plexus_core::{Message, MessageParts};
use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Row, Sqlite};

/// The columns a stored message is read from, in [`decode`]'s order.
pub(crate) const COLUMNS: &str =
    "seq, id, source, type, subject, time_s, time_ns, datacontenttype, key, headers, payload";

/// `time` as whole seconds since the Unix epoch (negative before it) and
/// nanoseconds within that second: exact for every `SystemTime`.
pub(crate) fn time_columns(time: SystemTime) -> (i64, i64) {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => (
            i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
            i64::from(after.subsec_nanos()),
        ),
        Err(before) => {
            let before = before.duration();
            let secs = i64::try_from(before.as_secs()).unwrap_or(i64::MAX);
            match before.subsec_nanos() {
                0 => (-secs, 0),
                nanos => (-secs - 1, i64::from(1_000_000_000 - nanos)),
            }
        }
    }
}

/// The inverse of [`time_columns`].
fn time_of(secs: i64, nanos: i64) -> Option<SystemTime> {
    let nanos = u32::try_from(nanos).ok().filter(|n| *n < 1_000_000_000)?;
    if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::new(secs.unsigned_abs(), nanos))
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::from_secs(secs.unsigned_abs()))?
            .checked_add(Duration::from_nanos(u64::from(nanos)))
    }
}

/// Headers as a JSON object; `None` when there are none.
pub(crate) fn headers_column(message: &Message) -> Option<String> {
    if message.headers().is_empty() {
        return None;
    }
    // A map of strings always serializes.
    serde_json::to_string(message.headers()).ok()
}

/// Binds `message`'s columns of `plexus_messages` after `topic_id`, in
/// the order of [`INSERT_COLUMNS`].
pub(crate) fn bind_message<'q>(
    query: Query<'q, Sqlite, SqliteArguments<'q>>,
    topic_id: i64,
    message: &'q Message,
) -> Query<'q, Sqlite, SqliteArguments<'q>> {
    bind_columns(query.bind(topic_id), message)
}

/// Binds the columns of `message` itself (all but where it is kept), in
/// the order of [`MESSAGE_COLUMNS`].
pub(crate) fn bind_columns<'q>(
    query: Query<'q, Sqlite, SqliteArguments<'q>>,
    message: &'q Message,
) -> Query<'q, Sqlite, SqliteArguments<'q>> {
    let (secs, nanos) = time_columns(message.time());
    query
        .bind(message.id())
        .bind(message.source())
        .bind(message.ty())
        .bind(message.subject())
        .bind(secs)
        .bind(nanos)
        .bind(message.data_content_type())
        .bind(message.key())
        .bind(headers_column(message))
        .bind(message.payload().as_ref())
}

/// The columns [`bind_columns`] binds.
pub(crate) const MESSAGE_COLUMNS: &str =
    "id, source, type, subject, time_s, time_ns, datacontenttype, key, headers, payload";

/// The columns [`bind_message`] binds, for an INSERT into
/// `plexus_messages`.
pub(crate) const INSERT_COLUMNS: &str =
    "topic_id, id, source, type, subject, time_s, time_ns, datacontenttype, key, headers, payload";

/// A stored message: its `seq` and the message, or why the row is not a
/// valid message.
pub(crate) fn decode(row: &SqliteRow) -> Result<(i64, Message), String> {
    let seq: i64 = row.try_get(0).map_err(|e| e.to_string())?;
    let parts = parts(row).map_err(|e| format!("stored message seq {seq}: {e}"))?;
    let message =
        Message::from_parts(parts).map_err(|e| format!("stored message seq {seq}: {e}"))?;
    Ok((seq, message))
}

fn parts(row: &SqliteRow) -> Result<MessageParts, String> {
    let get_err = |e: sqlx::Error| e.to_string();
    let secs: i64 = row.try_get(5).map_err(get_err)?;
    let nanos: i64 = row.try_get(6).map_err(get_err)?;
    let time =
        time_of(secs, nanos).ok_or_else(|| format!("time {secs}s {nanos}ns is out of range"))?;
    let headers: Option<String> = row.try_get(9).map_err(get_err)?;
    let headers: BTreeMap<String, String> = match headers {
        Some(text) => serde_json::from_str(&text).map_err(|e| format!("headers: {e}"))?,
        None => BTreeMap::new(),
    };
    let payload: Vec<u8> = row.try_get(10).map_err(get_err)?;
    Ok(MessageParts {
        id: row.try_get(1).map_err(get_err)?,
        source: row.try_get(2).map_err(get_err)?,
        ty: row.try_get(3).map_err(get_err)?,
        subject: row.try_get(4).map_err(get_err)?,
        time,
        data_content_type: row.try_get(7).map_err(get_err)?,
        key: row.try_get(8).map_err(get_err)?,
        headers,
        payload: Bytes::from(payload),
    })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::{time_columns, time_of};

    #[test]
    fn times_round_trip_exactly_on_both_sides_of_the_epoch() {
        let times = [
            UNIX_EPOCH,
            UNIX_EPOCH + Duration::new(1_790_000_000, 123_456_789),
            UNIX_EPOCH + Duration::new(0, 1),
            UNIX_EPOCH - Duration::new(0, 1),
            UNIX_EPOCH - Duration::new(86_400, 999_999_999),
            UNIX_EPOCH - Duration::from_secs(3),
        ];
        for time in times {
            let (secs, nanos) = time_columns(time);
            assert!((0..1_000_000_000).contains(&nanos));
            assert_eq!(time_of(secs, nanos), Some(time), "{time:?}");
        }
        assert_eq!(time_of(0, 1_000_000_000), None);
        assert_eq!(time_of(0, -1), None);
    }
}
