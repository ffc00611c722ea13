//! [`SupportService`]: the `shop.support.v1.Support` handler.

use std::sync::Arc;

use plexus_rpc::CallContext;
use plexus_rpc::client::Channel;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::agent::Agent;
use super::config::SupportConfig;
use super::metrics::SupportMetrics;
use super::v1::support_server::{Support, SupportServer};
use super::v1::{ChatMessage, ChatReply};
use crate::orders::v1::orders_client::OrdersClient;

/// The support service. Clones share the counters.
#[derive(Debug, Clone)]
pub struct SupportService {
    config: Arc<SupportConfig>,
    orders: Option<OrdersClient<Channel>>,
    metrics: Arc<SupportMetrics>,
}

impl SupportService {
    /// A service whose agent looks orders up with `orders`, if given.
    /// ([`start`](super::start) connects to [`SupportConfig::orders_url`].)
    pub fn new(config: SupportConfig, orders: Option<OrdersClient<Channel>>) -> Self {
        SupportService {
            config: Arc::new(config),
            orders,
            metrics: Arc::default(),
        }
    }

    /// The service's counters.
    pub fn metrics(&self) -> Arc<SupportMetrics> {
        self.metrics.clone()
    }

    /// The generated tonic server of this service, to add to a
    /// [`Server`](plexus_rpc::Server).
    pub fn into_server(self) -> SupportServer<Self> {
        SupportServer::new(self)
    }
}

/// A stream of agent replies.
pub type ReplyStream = ReceiverStream<Result<ChatReply, Status>>;

#[tonic::async_trait]
impl Support for SupportService {
    type ChatStream = ReplyStream;

    async fn chat(
        &self,
        request: Request<Streaming<ChatMessage>>,
    ) -> Result<Response<ReplyStream>, Status> {
        SupportMetrics::add(&self.metrics.chats_started);
        let ctx = CallContext::from_request(&request).cloned();
        let (tx, rx) = mpsc::channel(self.config.reply_buffer.max(1));
        let agent = Agent {
            orders: self.orders.clone(),
            lookup_timeout: self.config.lookup_timeout,
            metrics: self.metrics.clone(),
        };
        let conversation = converse(request.into_inner(), tx, agent, self.config.clone());
        // In the call's context, the conversation stops when the chat is over
        // and the agent's lookups carry the chat's deadline and trace.
        match ctx {
            Some(ctx) => drop(ctx.spawn(conversation)),
            None => drop(tokio::spawn(conversation)),
        }
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// Answers each customer message in turn until the customer stops writing,
/// goes away, or breaks a limit.
async fn converse(
    mut inbound: Streaming<ChatMessage>,
    tx: mpsc::Sender<Result<ChatReply, Status>>,
    mut agent: Agent,
    config: Arc<SupportConfig>,
) {
    let mut position: u32 = 0;
    loop {
        let message = tokio::select! {
            message = inbound.message() => message,
            () = tx.closed() => return,
        };
        let text = match message {
            Ok(Some(ChatMessage { text })) => text,
            Ok(None) => return,
            Err(status) => {
                let _ = tx.send(Err(status)).await;
                return;
            }
        };
        if let Err(status) = check(position, &text, &config) {
            let _ = tx.send(Err(status)).await;
            return;
        }
        let answer = agent.answer(&text).await;
        let reply = ChatReply {
            in_reply_to: position,
            text: answer.text,
            order_id: answer.order_id,
        };
        if tx.send(Ok(reply)).await.is_err() {
            return;
        }
        SupportMetrics::add(&agent.metrics.messages_answered);
        position += 1;
    }
}

fn check(position: u32, text: &str, config: &SupportConfig) -> Result<(), Status> {
    if position as usize >= config.max_messages_per_chat {
        return Err(Status::resource_exhausted(format!(
            "this chat has reached its limit of {} messages; start a new chat",
            config.max_messages_per_chat
        )));
    }
    if text.trim().is_empty() {
        return Err(Status::invalid_argument(format!(
            "text: message {position} is empty; write something for the agent to answer"
        )));
    }
    if text.len() > config.max_message_bytes {
        return Err(Status::invalid_argument(format!(
            "text: message {position} is {} bytes long; at most {} are allowed",
            text.len(),
            config.max_message_bytes
        )));
    }
    Ok(())
}
