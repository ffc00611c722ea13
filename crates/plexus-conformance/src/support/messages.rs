//! The messages scenarios publish: numbered, so a scenario can tell which
//! of its messages arrived.

use plexus_core::Message;

/// The header carrying a message's number within its scenario.
const NUMBER: &str = "conformance-n";
/// The header carrying a message's place within its key.
const SEQ: &str = "conformance-seq";

/// Message `n` of `scenario`, with key `key` and, when `seq` is given, its
/// place within the key.
pub(crate) fn numbered(scenario: &str, n: usize, key: Option<&str>, seq: Option<usize>) -> Message {
    let mut builder = Message::builder(
        "dev.plexus.conformance.Numbered",
        format!("/conformance/{scenario}"),
    )
    .header(NUMBER, n.to_string())
    .payload("text/plain", format!("message {n} of {scenario}"));
    if let Some(key) = key {
        builder = builder.key(key);
    }
    if let Some(seq) = seq {
        builder = builder.header(SEQ, seq.to_string());
    }
    builder.build().expect("numbered test messages are valid")
}

/// The number [`numbered`] gave `message`, if it has one.
pub(crate) fn number_of(message: &Message) -> Option<usize> {
    message.header(NUMBER)?.parse().ok()
}

/// The place within its key [`numbered`] gave `message`, if it has one.
pub(crate) fn seq_of(message: &Message) -> Option<usize> {
    message.header(SEQ)?.parse().ok()
}
