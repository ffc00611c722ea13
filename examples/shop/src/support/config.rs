//! [`SupportConfig`]: every bound of the support service.

use std::time::Duration;

/// The bounds of the support service. Start from [`Default`] and change the
/// fields you need.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SupportConfig {
    /// Where the orders service is (`http://host:port`), to answer questions
    /// about orders; `None` answers without looking them up. Default `None`.
    pub orders_url: Option<String>,
    /// Customer messages one chat may send; past it, the chat ends with
    /// `RESOURCE_EXHAUSTED`. Default 1,000.
    pub max_messages_per_chat: usize,
    /// Longest customer message, in bytes. Default 2,000.
    pub max_message_bytes: usize,
    /// Time the agent gives one order lookup (less if the chat's deadline is
    /// nearer). Default 1 s.
    pub lookup_timeout: Duration,
    /// Replies the agent may write ahead of the customer reading them.
    /// Default 16.
    pub reply_buffer: usize,
}

impl Default for SupportConfig {
    fn default() -> Self {
        SupportConfig {
            orders_url: None,
            max_messages_per_chat: 1_000,
            max_message_bytes: 2_000,
            lookup_timeout: Duration::from_secs(1),
            reply_buffer: 16,
        }
    }
}
