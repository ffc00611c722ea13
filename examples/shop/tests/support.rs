//! `shop.support.v1.Support` (bidirectional streaming), over a real plexus
//! server and client on loopback.

mod common;

use std::time::Duration;

use common::{orders_client, sample_order, support_client};
use shop::support::v1::ChatMessage;
use shop::support::{SupportConfig, start};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

fn message(text: &str) -> ChatMessage {
    ChatMessage {
        text: text.to_owned(),
    }
}

#[tokio::test]
async fn the_agent_answers_each_message_in_turn_about_the_order_mentioned() {
    let orders = shop::orders::start(shop::orders::OrdersConfig::default())
        .await
        .unwrap();
    let placed = orders_client(&orders)
        .await
        .place_order(sample_order("cus-1"))
        .await
        .unwrap()
        .into_inner();
    let mut config = SupportConfig::default();
    config.orders_url = Some(orders.url());
    let support = start(config).await.unwrap();
    let mut client = support_client(&support).await;

    // Interactive: each message waits for its answer before the next one.
    let (tx, rx) = mpsc::channel(1);
    let mut replies = client
        .chat(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let questions = [
        format!("Hello, where is {}?", placed.order_id),
        "Thanks!".to_owned(),
        "What about ord-999?".to_owned(),
        format!("And {} again, please", placed.order_id),
        "Bye".to_owned(),
    ];
    for (i, question) in questions.iter().enumerate() {
        tx.send(message(question)).await.unwrap();
        let reply = tokio::time::timeout(Duration::from_secs(5), replies.next())
            .await
            .expect("an answer within 5 s")
            .unwrap()
            .unwrap();
        assert_eq!(reply.in_reply_to as usize, i);
        match i {
            0 | 3 => {
                assert_eq!(reply.order_id, placed.order_id);
                assert!(reply.text.contains("is placed"), "{}", reply.text);
                assert!(reply.text.contains("$6.99"), "{}", reply.text);
            }
            2 => {
                assert_eq!(reply.order_id, "ord-999");
                assert!(
                    reply.text.contains("can't find order ord-999"),
                    "{}",
                    reply.text
                );
            }
            _ => assert_eq!(reply.order_id, ""),
        }
    }
    drop(tx);
    assert!(
        replies.next().await.is_none(),
        "the chat ends when the customer stops writing"
    );
    assert_eq!(support.metrics().messages_answered(), 5);
    assert_eq!(support.metrics().lookups_failed(), 0);
}

#[tokio::test]
async fn answers_keep_the_order_of_messages_sent_at_once() {
    let support = start(SupportConfig::default()).await.unwrap();
    let mut client = support_client(&support).await;
    let messages: Vec<_> = (0..50)
        .map(|i| message(&format!("about ord-{i}")))
        .collect();
    let replies: Vec<_> = client
        .chat(tokio_stream::iter(messages))
        .await
        .unwrap()
        .into_inner()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    assert_eq!(replies.len(), 50);
    for (i, reply) in replies.iter().enumerate() {
        assert_eq!(reply.in_reply_to as usize, i);
        assert_eq!(reply.order_id, format!("ord-{i}"));
    }
}

#[tokio::test]
async fn an_empty_or_oversized_message_ends_the_chat_invalid_argument() {
    let support = start(SupportConfig::default()).await.unwrap();
    let mut client = support_client(&support).await;
    for bad in [String::new(), "x".repeat(2_001)] {
        let messages = vec![message("hello"), message(&bad), message("never answered")];
        let mut replies = client
            .chat(tokio_stream::iter(messages))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(replies.next().await.unwrap().unwrap().in_reply_to, 0);
        let status = replies.next().await.unwrap().unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status.message().starts_with("text: message 1"),
            "{}",
            status.message()
        );
        assert!(replies.next().await.is_none());
    }
}

#[tokio::test]
async fn a_chat_past_its_message_limit_ends_resource_exhausted() {
    let mut config = SupportConfig::default();
    config.max_messages_per_chat = 2;
    let support = start(config).await.unwrap();
    let mut client = support_client(&support).await;
    let messages: Vec<_> = (0..3).map(|i| message(&format!("message {i}"))).collect();
    let replies: Vec<_> = client
        .chat(tokio_stream::iter(messages))
        .await
        .unwrap()
        .into_inner()
        .collect()
        .await;
    assert_eq!(replies.len(), 3);
    assert!(replies[..2].iter().all(Result::is_ok));
    assert_eq!(
        replies[2].as_ref().unwrap_err().code(),
        Code::ResourceExhausted
    );
}
