//! `plexus pub` and `plexus sub`: publish to and subscribe on a bus named
//! by a URL.
//!
//! | URL | backend |
//! |---|---|
//! | `memory:` | the in-memory bus of this process (useful within one command only) |
//! | `sqlite://PATH` | the durable bus in a SQLite file (WAL, `synchronous=FULL`), shared by processes |
//! | `nats://HOST[:PORT][?stream=NAME]` | NATS JetStream (stream `PLEXUS` unless named) |
//!
//! Messages are printed as CloudEvents JSON lines ([`event_json`]).

mod event_json;
pub(crate) mod open;
mod publish;
mod subscribe;

pub use publish::{PubArgs, publish};
pub use subscribe::{SubArgs, subscribe};
