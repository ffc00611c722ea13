//! Request messages from JSON: one document, or a sequence of them for
//! client-streaming and bidirectional calls.
//!
//! The JSON is read on a thread of its own (standard input may block for as
//! long as the user types) and handed over through a bounded channel, one
//! document at a time, so a bidirectional call answers each message as it
//! is entered.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufReader, Cursor, Read};
use std::rc::Rc;

use futures::Stream;
use prost_reflect::{DeserializeOptions, DynamicMessage, MessageDescriptor};
use tokio::sync::{mpsc, oneshot};

use super::args::Input;
use super::error::Failure;

/// Largest JSON document accepted for one request message.
const MAX_DOCUMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Documents read ahead of the call.
const READ_AHEAD: usize = 16;

/// The JSON documents of the input, in order.
#[derive(Debug)]
pub struct Documents {
    documents: mpsc::Receiver<Result<serde_json::Value, String>>,
    source: String,
    count: usize,
}

/// Starts reading `input`; `None` when there is no `-d`.
pub fn read(input: &Input) -> Result<Option<Documents>, Failure> {
    let source = match input {
        Input::Absent => return Ok(None),
        Input::Inline(json) => Source::Bytes(json.clone().into_bytes()),
        Input::File(path) => Source::File(File::open(path).map_err(|e| {
            Failure::usage(format!(
                "cannot read the request file {}: {e}",
                path.display()
            ))
        })?),
        Input::Stdin => Source::Stdin,
    };
    let (sender, documents) = mpsc::channel(READ_AHEAD);
    // A plain thread, not `spawn_blocking`: a read from a terminal that never
    // ends must not keep the runtime from shutting down.
    std::thread::Builder::new()
        .name("plexus-call-input".to_owned())
        .spawn(move || source.parse_into(&sender))
        .map_err(|e| Failure::usage(format!("cannot start reading the input: {e}")))?;
    Ok(Some(Documents {
        documents,
        source: input.describe(),
        count: 0,
    }))
}

impl Documents {
    /// The next request message as `descriptor`, or `None` at the end.
    pub async fn next(
        &mut self,
        descriptor: &MessageDescriptor,
    ) -> Option<Result<DynamicMessage, Failure>> {
        let document = self.documents.recv().await?;
        self.count += 1;
        let source = &self.source;
        Some(
            document
                .map_err(|e| Failure::usage(format!("{source}: invalid JSON: {e}")))
                .and_then(|value| {
                    let options = DeserializeOptions::new().deny_unknown_fields(true);
                    DynamicMessage::deserialize_with_options(descriptor.clone(), value, &options)
                        .map_err(|e| {
                            Failure::usage(format!(
                                "{source}: request message {} is not a valid {}: {e}",
                                self.count,
                                descriptor.full_name()
                            ))
                        })
                }),
        )
    }
}

/// The one request of a unary or server-streaming call: the default
/// message when there is no input, an error when there is more than one.
pub async fn single(
    documents: Option<Documents>,
    descriptor: &MessageDescriptor,
) -> Result<DynamicMessage, Failure> {
    let Some(mut documents) = documents else {
        return Ok(DynamicMessage::new(descriptor.clone()));
    };
    let message = match documents.next(descriptor).await {
        None => DynamicMessage::new(descriptor.clone()),
        Some(message) => message?,
    };
    match documents.documents.recv().await {
        None => Ok(message),
        Some(Err(e)) => Err(Failure::usage(format!(
            "{}: invalid JSON after the request message: {e}",
            documents.source
        ))),
        Some(Ok(_)) => Err(Failure::usage(format!(
            "{} holds more than one message, but this method takes a single request; \
             only client-streaming and bidirectional methods take several",
            documents.source
        ))),
    }
}

/// The requests of a client-streaming or bidirectional call. A message
/// that cannot be read is sent to `failed` and the stream then stays open
/// (it never half-closes), so the caller can cancel the call instead of
/// letting the server finish on a partial input.
pub fn stream(
    documents: Option<Documents>,
    descriptor: MessageDescriptor,
    failed: oneshot::Sender<Failure>,
) -> impl Stream<Item = DynamicMessage> + Send + 'static {
    futures::stream::unfold(
        (documents, descriptor, Some(failed)),
        |(mut documents, descriptor, failed)| async move {
            let next = match documents.as_mut() {
                Some(documents) => documents.next(&descriptor).await,
                None => None,
            };
            match next {
                None => None,
                Some(Ok(message)) => Some((message, (documents, descriptor, failed))),
                Some(Err(failure)) => {
                    if let Some(failed) = failed {
                        let _ = failed.send(failure);
                    }
                    futures::future::pending().await
                }
            }
        },
    )
}

enum Source {
    Bytes(Vec<u8>),
    File(File),
    Stdin,
}

impl Source {
    /// Parses whitespace-separated JSON documents into `sender` until the
    /// end, the first error, or the receiver going away.
    fn parse_into(self, sender: &mpsc::Sender<Result<serde_json::Value, String>>) {
        let used = Rc::new(Cell::new(0));
        let reader: Box<dyn Read> = match self {
            Source::Bytes(bytes) => Box::new(Cursor::new(bytes)),
            Source::File(file) => Box::new(BufReader::new(file)),
            Source::Stdin => Box::new(io::stdin().lock()),
        };
        let reader = Bounded {
            inner: reader,
            used: Rc::clone(&used),
            limit: MAX_DOCUMENT_BYTES,
        };
        for document in
            serde_json::Deserializer::from_reader(reader).into_iter::<serde_json::Value>()
        {
            used.set(0);
            let failed = document.is_err();
            if sender
                .blocking_send(document.map_err(|e| e.to_string()))
                .is_err()
                || failed
            {
                return;
            }
        }
    }
}

/// Fails a read once one document has used `limit` bytes.
struct Bounded<R> {
    inner: R,
    used: Rc<Cell<u64>>,
    limit: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let room = self.limit - self.used.get();
        if room == 0 {
            return Err(io::Error::other(format!(
                "a request message is longer than {} bytes",
                self.limit
            )));
        }
        let len = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let read = self.inner.read(&mut buf[..len])?;
        self.used.set(self.used.get() + read as u64);
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use prost_reflect::DescriptorPool;

    use super::*;

    fn echo_request() -> MessageDescriptor {
        DescriptorPool::decode(plexus_rpc::echo::FILE_DESCRIPTOR_SET)
            .unwrap()
            .get_message_by_name("plexus.echo.v1.EchoRequest")
            .unwrap()
    }

    fn inline(json: &str) -> Option<Documents> {
        read(&Input::Inline(json.to_owned())).unwrap()
    }

    #[tokio::test]
    async fn a_sequence_of_documents_becomes_messages_in_order() {
        let descriptor = echo_request();
        let mut documents = inline("{\"payload\":\"YQ==\"}\n\n {\"payload\":\"Yg==\"}{}");
        let mut payloads = Vec::new();
        while let Some(message) = documents.as_mut().unwrap().next(&descriptor).await {
            let message = message.unwrap();
            payloads.push(
                message
                    .get_field_by_name("payload")
                    .unwrap()
                    .as_bytes()
                    .unwrap()
                    .clone(),
            );
        }
        assert_eq!(payloads, [&b"a"[..], b"b", b""]);
    }

    #[tokio::test]
    async fn a_single_request_is_the_default_without_input_and_refuses_two() {
        let descriptor = echo_request();
        assert_eq!(
            single(None, &descriptor).await.unwrap(),
            DynamicMessage::new(descriptor.clone())
        );
        assert_eq!(
            single(inline(""), &descriptor).await.unwrap(),
            DynamicMessage::new(descriptor.clone())
        );
        let error = single(inline("{} {}"), &descriptor)
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("more than one message"), "{error}");
        let error = single(inline("{\"nope\":1}"), &descriptor)
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("unrecognized field name 'nope'"), "{error}");
    }

    #[test]
    fn one_document_may_not_exceed_the_limit() {
        let used = Rc::new(Cell::new(0));
        let mut reader = Bounded {
            inner: Cursor::new(vec![b' '; 64]),
            used: Rc::clone(&used),
            limit: 10,
        };
        let mut buf = [0; 64];
        assert_eq!(reader.read(&mut buf).unwrap(), 10);
        let error = reader.read(&mut buf).unwrap_err();
        assert!(
            error.to_string().contains("longer than 10 bytes"),
            "{error}"
        );
        used.set(0);
        assert_eq!(reader.read(&mut buf).unwrap(), 10);
    }
}
