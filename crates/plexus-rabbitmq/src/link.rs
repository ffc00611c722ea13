//! [`Links`]: the bus's connection to the broker and its publishing
//! channels, made again after the broker went away.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use lapin::options::{
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use plexus_core::bus::BusError;
use tokio::sync::Mutex;

use crate::config::RabbitConfig;

/// One connection and its publishing channels (publisher confirms on).
pub(crate) struct Link {
    pub(crate) connection: Connection,
    /// At least one.
    publishers: Vec<Channel>,
    /// The publishing channel to take next (modulo their number).
    next: AtomicUsize,
}

impl Link {
    fn usable(&self) -> bool {
        self.connection.status().connected()
            && self.publishers.iter().all(|c| c.status().connected())
    }

    /// A publishing channel, each in turn.
    pub(crate) fn publisher(&self) -> &Channel {
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        &self.publishers[turn % self.publishers.len()]
    }
}

/// The current link, made on first use and again whenever it broke.
pub(crate) struct Links {
    current: RwLock<Option<Arc<Link>>>,
    /// Set once the bus closed: no link is made after that.
    taken: AtomicBool,
    /// Held while a link is made, so that one connection is made at once.
    making: Mutex<()>,
}

impl Links {
    /// With `first` as the current link.
    pub(crate) fn new(first: Link) -> Self {
        Links {
            current: RwLock::new(Some(Arc::new(first))),
            taken: AtomicBool::new(false),
            making: Mutex::new(()),
        }
    }

    /// The current link if it is usable, else a new one.
    pub(crate) async fn get(&self, config: &RabbitConfig) -> Result<Arc<Link>, String> {
        if let Some(link) = self.usable() {
            return Ok(link);
        }
        let _making = self.making.lock().await;
        if let Some(link) = self.usable() {
            return Ok(link);
        }
        if self.taken.load(Ordering::Acquire) {
            return Err("the bus is closed".to_owned());
        }
        let link = Arc::new(connect(config).await?);
        let old = self
            .current
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .replace(Arc::clone(&link));
        if let Some(old) = old {
            // Closed in the background: a broken connection may never
            // answer.
            let wait = config.connect_timeout;
            tokio::spawn(async move {
                let closing = old.connection.close(320, "plexus: replaced".into());
                let _ = tokio::time::timeout(wait, closing).await;
            });
        }
        Ok(link)
    }

    fn usable(&self) -> Option<Arc<Link>> {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        current.as_ref().filter(|link| link.usable()).cloned()
    }

    /// Takes the current link out (to close it); later `get`s make none.
    pub(crate) async fn take(&self) -> Option<Arc<Link>> {
        self.taken.store(true, Ordering::Release);
        // A link being made is stored before this returns.
        let _making = self.making.lock().await;
        self.current
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}

/// Connects, opens the publishing channels with publisher confirms, and
/// declares the exchange and the dead letters' exchange and queue.
pub(crate) async fn connect(config: &RabbitConfig) -> Result<Link, String> {
    let connecting = Connection::connect_uri(
        config.uri.clone(),
        ConnectionProperties::default().with_connection_name("plexus".into()),
    );
    let connection = tokio::time::timeout(config.connect_timeout, connecting)
        .await
        .map_err(|_| format!("connecting took over {:?}", config.connect_timeout))?
        .map_err(|e| format!("connecting failed: {e}"))?;
    let mut publishers = Vec::with_capacity(config.publishing_channels.max(1));
    for _ in 0..config.publishing_channels.max(1) {
        let channel = connection
            .create_channel()
            .await
            .map_err(|e| format!("opening a channel failed: {e}"))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| format!("turning on publisher confirms failed: {e}"))?;
        publishers.push(channel);
    }
    let publisher = &publishers[0];
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    publisher
        .exchange_declare(
            config.exchange.as_str().into(),
            ExchangeKind::Topic,
            durable,
            FieldTable::default(),
        )
        .await
        .map_err(|e| format!("declaring topic exchange `{}` failed: {e}", config.exchange))?;
    if let Some(dead) = &config.dead_letters {
        publisher
            .exchange_declare(
                dead.exchange.as_str().into(),
                ExchangeKind::Topic,
                durable,
                FieldTable::default(),
            )
            .await
            .map_err(|e| {
                format!(
                    "declaring dead-letter exchange `{}` failed: {e}",
                    dead.exchange
                )
            })?;
        let mut arguments = quorum();
        arguments.insert(
            "x-max-length".into(),
            AMQPValue::LongLongInt(i64::try_from(dead.max_length).unwrap_or(i64::MAX)),
        );
        declare_queue(publisher, &dead.queue, arguments).await?;
        publisher
            .queue_bind(
                dead.queue.as_str().into(),
                dead.exchange.as_str().into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| format!("binding dead-letter queue `{}` failed: {e}", dead.queue))?;
    }
    Ok(Link {
        connection,
        publishers,
        next: AtomicUsize::new(0),
    })
}

/// The arguments of a quorum queue.
pub(crate) fn quorum() -> FieldTable {
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString(LongString::from("quorum")),
    );
    arguments
}

/// Declares durable queue `name` with `arguments`; an error says when an
/// existing queue of that name has other arguments.
pub(crate) async fn declare_queue(
    channel: &Channel,
    name: &str,
    arguments: FieldTable,
) -> Result<(), String> {
    let options = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(name.into(), options, arguments)
        .await
        .map(|_| ())
        .map_err(|e| {
            format!(
                "declaring quorum queue `{name}` failed: {e} (a queue of that name with other \
                 arguments, say from an older configuration, must be deleted first)"
            )
        })
}

/// Maps a link error to the bus's error, naming the broker.
pub(crate) fn unreachable(name: &str, doing: &str, reason: impl std::fmt::Display) -> BusError {
    BusError::backend(
        name,
        format!(
            "{doing}: {reason}; check that RabbitMQ runs there (`rabbitmq-server -detached`) and \
             that the user may use the virtual host"
        ),
    )
}
