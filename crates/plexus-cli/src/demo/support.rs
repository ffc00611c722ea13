//! The support service's share of the workload: bidirectional chats.

use std::time::Duration;

use futures::StreamExt as _;
use plexus_rpc::client::Channel;
use shop::support::v1::ChatMessage;
use shop::support::v1::support_client::SupportClient;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;

use super::report::{Invariant, Latency, Row};

/// Longest wait for one answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens `sessions` chats at once; in each, the customer asks `messages`
/// questions about the orders `ids`, one at a time, waiting for each answer.
pub(super) async fn bidi(
    client: &SupportClient<Channel>,
    sessions: usize,
    messages: usize,
    ids: &[String],
) -> Row {
    let chats = (0..sessions).map(|s| {
        let questions: Vec<String> = (0..messages)
            .map(|m| ids[(s * messages + m) % ids.len()].clone())
            .collect();
        chat(client.clone(), questions)
    });
    let mut latency = Latency::new();
    let mut violations = Vec::new();
    let mut ok = 0;
    for (s, (elapsed, result)) in futures::future::join_all(chats)
        .await
        .into_iter()
        .enumerate()
    {
        latency.record(elapsed);
        match result {
            Ok(()) => ok += 1,
            Err(violation) => violations.push(format!("chat {s}: {violation}")),
        }
    }
    Row {
        pattern: "gRPC bidi streaming",
        calls: sessions as u64,
        ok,
        latency,
        invariant: Invariant::check("every message answered in order", &violations),
    }
}

/// One chat: asks about each order in turn; checks each answer is about
/// that order, in order, and that the chat ends cleanly.
async fn chat(
    mut client: SupportClient<Channel>,
    orders: Vec<String>,
) -> (Duration, Result<(), String>) {
    let start = Instant::now();
    let result = async {
        let (tx, rx) = mpsc::channel(1);
        let mut replies = client
            .chat(ReceiverStream::new(rx))
            .await
            .map_err(|s| s.to_string())?
            .into_inner();
        for (position, order_id) in orders.iter().enumerate() {
            let text = format!("Hello, where is my order {order_id}?");
            tx.send(ChatMessage { text })
                .await
                .map_err(|_| "the chat closed early")?;
            let reply = match tokio::time::timeout(ANSWER_TIMEOUT, replies.next()).await {
                Err(_) => {
                    return Err(format!(
                        "no answer to message {position} within {ANSWER_TIMEOUT:?}"
                    ));
                }
                Ok(None) => {
                    return Err(format!(
                        "the chat ended before answering message {position}"
                    ));
                }
                Ok(Some(reply)) => reply.map_err(|s| s.to_string())?,
            };
            if reply.in_reply_to as usize != position {
                return Err(format!(
                    "answer to message {} came at {position}",
                    reply.in_reply_to
                ));
            }
            // "Order ord-N is …" only comes from a lookup on the orders service.
            if reply.order_id != *order_id
                || !reply.text.starts_with(&format!("Order {order_id} is "))
            {
                return Err(format!(
                    "message {position} about {order_id} got {:?}",
                    reply.text
                ));
            }
        }
        drop(tx);
        match tokio::time::timeout(ANSWER_TIMEOUT, replies.next()).await {
            Ok(None) => Ok(()),
            Ok(Some(extra)) => Err(format!(
                "unexpected reply after the last message: {extra:?}"
            )),
            Err(_) => Err("the chat did not end after the customer stopped writing".to_owned()),
        }
    }
    .await;
    (start.elapsed(), result)
}
