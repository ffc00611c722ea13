//! A message as the columns of `messages`, and back.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use plexus_core::message::SPEC_VERSION;
use plexus_core::{Message, MessageParts};
use sqlx::Row;
use sqlx::postgres::PgRow;
use time::OffsetDateTime;

/// A publish batch as one array per column, for one `INSERT ... SELECT
/// FROM unnest(...)`.
#[derive(Default)]
pub(crate) struct Columns<'a> {
    pub(crate) ids: Vec<&'a str>,
    pub(crate) sources: Vec<&'a str>,
    pub(crate) types: Vec<&'a str>,
    pub(crate) subjects: Vec<Option<&'a str>>,
    pub(crate) times: Vec<OffsetDateTime>,
    pub(crate) content_types: Vec<Option<&'a str>>,
    pub(crate) keys: Vec<Option<&'a str>>,
    pub(crate) headers: Vec<Option<String>>,
    pub(crate) data: Vec<&'a [u8]>,
}

impl<'a> Columns<'a> {
    /// The columns of `batch`, or the id of the first message whose time
    /// PostgreSQL cannot store and why.
    pub(crate) fn of(batch: &'a [Message]) -> Result<Self, (String, String)> {
        let mut columns = Columns {
            ids: Vec::with_capacity(batch.len()),
            sources: Vec::with_capacity(batch.len()),
            types: Vec::with_capacity(batch.len()),
            subjects: Vec::with_capacity(batch.len()),
            times: Vec::with_capacity(batch.len()),
            content_types: Vec::with_capacity(batch.len()),
            keys: Vec::with_capacity(batch.len()),
            headers: Vec::with_capacity(batch.len()),
            data: Vec::with_capacity(batch.len()),
        };
        for message in batch {
            let time = time_column(message.time()).ok_or_else(|| {
                (
                    message.id().to_owned(),
                    "its time is out of range".to_owned(),
                )
            })?;
            columns.ids.push(message.id());
            columns.sources.push(message.source());
            columns.types.push(message.ty());
            columns.subjects.push(message.subject());
            columns.times.push(time);
            columns.content_types.push(message.data_content_type());
            columns.keys.push(message.key());
            columns.headers.push(headers_column(message));
            columns.data.push(message.payload());
        }
        Ok(columns)
    }
}

/// One message's columns (see [`Columns::single`]).
pub(crate) struct One<'a> {
    pub(crate) id: &'a str,
    pub(crate) source: &'a str,
    pub(crate) ty: &'a str,
    pub(crate) subject: Option<&'a str>,
    pub(crate) time: OffsetDateTime,
    pub(crate) content_type: Option<&'a str>,
    pub(crate) key: Option<&'a str>,
    pub(crate) headers: Option<&'a str>,
    pub(crate) data: &'a [u8],
}

impl Columns<'_> {
    /// The columns of the batch's message when it holds exactly one.
    pub(crate) fn single(&self) -> Option<One<'_>> {
        match (
            self.ids.as_slice(),
            self.sources.as_slice(),
            self.types.as_slice(),
            self.subjects.as_slice(),
            self.times.as_slice(),
            self.content_types.as_slice(),
            self.keys.as_slice(),
            self.headers.as_slice(),
            self.data.as_slice(),
        ) {
            ([id], [source], [ty], [subject], [time], [content_type], [key], [headers], [data]) => {
                Some(One {
                    id,
                    source,
                    ty,
                    subject: *subject,
                    time: *time,
                    content_type: *content_type,
                    key: *key,
                    headers: headers.as_deref(),
                    data,
                })
            }
            _ => None,
        }
    }
}

/// `time` as a timestamp PostgreSQL stores (it keeps microseconds, years
/// 4713 BC to 294276 AD; this accepts years -9999 to 9999).
fn time_column(time: SystemTime) -> Option<OffsetDateTime> {
    let nanos = match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i128::try_from(after.as_nanos()).ok()?,
        Err(before) => -i128::try_from(before.duration().as_nanos()).ok()?,
    };
    OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}

/// Headers as a JSON object; `None` when there are none.
fn headers_column(message: &Message) -> Option<String> {
    if message.headers().is_empty() {
        return None;
    }
    // A map of strings always serializes.
    serde_json::to_string(message.headers()).ok()
}

/// The columns of a delivered row, in this order (`claim()`'s, and the
/// exclusive read's before its `xid`), read by position.
pub(crate) const SEQ: usize = 0;
const ATTEMPT: usize = 1;
const ID: usize = 2;
const SOURCE: usize = 3;
const TYPE: usize = 4;
const SPECVERSION: usize = 5;
const SUBJECT: usize = 6;
const TIME: usize = 7;
const CONTENT_TYPE: usize = 8;
const KEY: usize = 9;
const HEADERS: usize = 10;
const DATA: usize = 11;
/// The first column after the message's.
pub(crate) const NEXT: usize = 12;

/// A delivered row: its `seq`, attempt and message, or why the row is
/// not a valid message. The row's columns are in the order above.
pub(crate) fn decode(row: &PgRow) -> Result<(i64, u32, Message), (i64, String)> {
    let seq: i64 = row.try_get(SEQ).map_err(|e| (0, e.to_string()))?;
    let attempt: i32 = row.try_get(ATTEMPT).map_err(|e| (seq, e.to_string()))?;
    let message = message(row).map_err(|e| (seq, e))?;
    Ok((seq, u32::try_from(attempt).unwrap_or(1), message))
}

fn message(row: &PgRow) -> Result<Message, String> {
    let get_err = |e: sqlx::Error| e.to_string();
    let specversion: &str = row.try_get(SPECVERSION).map_err(get_err)?;
    if specversion != SPEC_VERSION {
        return Err(format!(
            "specversion is `{specversion}`, plexus reads {SPEC_VERSION}"
        ));
    }
    let time: OffsetDateTime = row.try_get(TIME).map_err(get_err)?;
    let headers: serde_json::Value = row.try_get(HEADERS).map_err(get_err)?;
    let headers = headers_of(headers)?;
    let payload: &[u8] = row.try_get(DATA).map_err(get_err)?;
    let parts = MessageParts {
        id: row.try_get(ID).map_err(get_err)?,
        source: row.try_get(SOURCE).map_err(get_err)?,
        ty: row.try_get(TYPE).map_err(get_err)?,
        subject: row.try_get(SUBJECT).map_err(get_err)?,
        time: SystemTime::from(time),
        data_content_type: row.try_get(CONTENT_TYPE).map_err(get_err)?,
        key: row.try_get(KEY).map_err(get_err)?,
        headers,
        payload: Bytes::copy_from_slice(payload),
    };
    Message::from_parts(parts).map_err(|e| e.to_string())
}

/// The `headers` column: a JSON object; string values as they are, other
/// values as their JSON text (a client in another language may store
/// numbers or booleans).
fn headers_of(value: serde_json::Value) -> Result<BTreeMap<String, String>, String> {
    match value {
        serde_json::Value::Null => Ok(BTreeMap::new()),
        serde_json::Value::Object(map) => Ok(map
            .into_iter()
            .map(|(name, value)| match value {
                serde_json::Value::String(text) => (name, text),
                other => (name, other.to_string()),
            })
            .collect()),
        other => Err(format!("headers is not a JSON object but `{other}`")),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use serde_json::json;

    use super::{headers_of, time_column};

    #[test]
    fn times_convert_on_both_sides_of_the_epoch() {
        for time in [
            UNIX_EPOCH,
            UNIX_EPOCH + Duration::new(1_790_000_000, 123_456_000),
            UNIX_EPOCH - Duration::new(86_400, 999_999_000),
        ] {
            let column = time_column(time).unwrap();
            assert_eq!(std::time::SystemTime::from(column), time);
        }
        assert!(time_column(UNIX_EPOCH + Duration::from_secs(400_000_000_000)).is_none());
    }

    #[test]
    fn headers_are_a_json_object_of_strings() {
        let headers = headers_of(json!({"a": "x", "n": 3, "b": true})).unwrap();
        assert_eq!(headers["a"], "x");
        assert_eq!(headers["n"], "3");
        assert_eq!(headers["b"], "true");
        assert!(headers_of(json!(null)).unwrap().is_empty());
        assert!(
            headers_of(json!([1]))
                .unwrap_err()
                .contains("not a JSON object")
        );
    }
}
