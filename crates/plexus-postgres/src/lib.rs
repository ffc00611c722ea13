//! plexus messaging on PostgreSQL.
//!
//! [`PostgresBus`] implements the bus contract ([`plexus_core::bus`]) on
//! tables of one schema (see [Schema](#schema)).
//!
//! - **Publishing.** A batch is one multi-row `INSERT` (one array per
//!   column through `unnest`) in one transaction: it returns once
//!   committed (durable as the server's `synchronous_commit` makes it),
//!   whole or not at all.
//! - **Consumer groups** keep a cursor and their unacknowledged messages
//!   (`pending`) in the database. A claim, one call of the schema's
//!   `claim()` function, leases due messages with `FOR UPDATE SKIP
//!   LOCKED` and, if there is room, takes new messages after the cursor.
//!   An unanswered lease is delivered again after its ack deadline with
//!   `attempt + 1`; a nack makes the message due after its delay. Acks
//!   and nacks of concurrent deliveries are applied together, one
//!   statement each; an ack returns once committed. A claim commits
//!   without waiting for the disk: a server crash may take back leases
//!   (their messages are delivered again, at least once), never an ack
//!   (whose commit flushes the claims before it).
//! - **Per-key order.** A message whose key has an earlier message pending
//!   in the group is not delivered until that one is acknowledged: the
//!   messages of a key reach a group one at a time, in publish order.
//! - **No message passed over.** Messages are ordered by the publishing
//!   transaction's id, then insertion order, and a claim only takes
//!   messages of transactions older than every transaction still running,
//!   so a transaction that commits late (an outbox writing in the caller's
//!   transaction, a slow publisher) is never skipped by a cursor that
//!   moved on. The price: a transaction left open anywhere on the server
//!   holds back newer messages until it ends.
//! - **Wake-ups.** After a publish commits, the bus sends
//!   `pg_notify('<schema>', '<topic>')` (and wakes its own subscribers of
//!   the topic at once, so its listener passes over the notifications it
//!   sent itself); subscribers LISTEN, and one idle member of each
//!   group claims, handing on to another when its claim fills its room.
//!   Without a notification (a lost one, a server restart, a client that
//!   does not notify) they look again every
//!   [`PostgresConfig::poll_interval`].
//! - **Time** is stored as `timestamptz`: microseconds (a message's
//!   nanoseconds are rounded).
//! - **Retention.** Messages every group of their topic has acknowledged
//!   are deleted; a topic without groups keeps its messages (for groups
//!   that start at the earliest) until [`PostgresConfig::max_age`].
//!
//! ```no_run
//! use futures::StreamExt;
//! use plexus_core::Message;
//! use plexus_core::bus::{Publisher, SubscribeOptions, Subscriber};
//! use plexus_postgres::PostgresBus;
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let bus = PostgresBus::connect("postgres://postgres@127.0.0.1:5432/test").await?;
//! let mut orders = bus.subscribe("orders", SubscribeOptions::group("email")).await?;
//! let placed = Message::builder("shop.OrderPlaced", "/orders").key("order-1").build()?;
//! bus.publish("orders", vec![placed]).await?; // committed when this returns
//! let delivery = orders.next().await.expect("a delivery")?;
//! delivery.ack().await?; // committed when this returns
//! Publisher::close(&bus).await?;
//! # Ok(()) }
//! ```
//!
//! # Schema
//!
//! The CloudEvents PostgreSQL binding plexus uses (binary content mode:
//! attributes in columns, the data as it is), for clients in other
//! languages. In schema `S` (default `plexus`):
//!
//! `S.messages`: one row per message.
//!
//! | column | type | CloudEvents |
//! |---|---|---|
//! | `seq` | `bigint` identity | (insertion order; do not set) |
//! | `xid` | `xid8`, default `pg_current_xact_id()` | (publishing transaction; do not set) |
//! | `topic` | `text` | (the plexus topic) |
//! | `id` | `text` | `id` |
//! | `source` | `text` | `source` |
//! | `type` | `text` | `type` |
//! | `specversion` | `text`, default `'1.0'` | `specversion` |
//! | `subject` | `text` null | `subject` |
//! | `"time"` | `timestamptz` | `time` (microseconds) |
//! | `datacontenttype` | `text` null | `datacontenttype` |
//! | `partitionkey` | `text` null | `partitionkey` (the plexus key) |
//! | `headers` | `jsonb` object of strings, default `'{}'` | other extension attributes and headers |
//! | `data` | `bytea` | the data |
//! | `published_at` | `timestamptz`, default `now()` | (for retention) |
//!
//! To publish, insert rows (in any transaction: an outbox) and, after the
//! commit, `SELECT pg_notify('S', topic)` to wake subscribers at once.
//!
//! To read a topic in order from SQL, remember the `(xid, seq)` of the
//! last row read (start at `('0', 0)`, or at
//! `(pg_snapshot_xmax(pg_current_snapshot()), 0)` for new messages only)
//! and repeat
//!
//! ```sql
//! SELECT * FROM S.messages
//! WHERE topic = $1 AND (xid, seq) > ($2, $3)
//!   AND xid < pg_snapshot_xmin(pg_current_snapshot())
//! ORDER BY xid, seq LIMIT 100
//! ```
//!
//! To consume as a member of a plexus consumer group:
//! `SELECT S.join_group(topic, group, false, earliest)` gives the group's
//! id; `SELECT * FROM S.claim(group_id, owner, max, deadline_ms, window)`
//! leases messages (the columns above plus `attempt`; one row with `seq`
//! NULL when there is nothing); acknowledge with `SELECT
//! S.ack(ARRAY[group_id], ARRAY[seq], ARRAY[seq], ARRAY[attempt])`,
//! refuse with `SELECT S.nack(ARRAY[group_id], ARRAY[seq],
//! ARRAY[attempt], ARRAY[delay_ms])`. Many at once: `ack()` takes ranges
//! `first..=last` of a group still in that attempt (give a range only
//! where every seq in it was acknowledged: seqs of other topics' messages
//! fall between a topic's), `nack()` one message per element. Answer
//! through these functions, not on `S.pending` itself: a row there may
//! hold a run of messages (`seq..=last_seq`). `S.groups` holds each
//! group's cursor, `S.pending` its unacknowledged messages.

mod bus;
mod config;
mod inbox;
mod outbox;

pub use bus::PostgresBus;
pub use config::{DEFAULT_SCHEMA, DEFAULT_URL, PostgresConfig};
pub use inbox::PostgresInbox;
pub use outbox::PostgresOutbox;
pub use plexus_core::bus::Seen;
