//! A test backend: handles over one in-memory bus, each closable on its
//! own (as separate connections are), with one deliberate fault.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use plexus_bus::memory::MemoryBus;
use plexus_conformance::Backend;
use plexus_core::Message;
use plexus_core::bus::{
    Acker, BoxFuture, BusError, Delivery, Features, Publisher, SubscribeOptions, Subscriber,
    Subscription,
};
use tokio::sync::watch;

/// The fault a backend has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// None: the wrapper itself must pass.
    None,
    /// Every 50th published message is silently dropped.
    LosesMessages,
    /// A header value is changed on the way.
    ChangesHeaders,
    /// A delivered message's `time` is the time of delivery.
    RestampsTime,
    /// Every delivery says attempt 1.
    AttemptAlwaysOne,
    /// A delivery is acknowledged on receipt; answers do nothing.
    AcksOnReceipt,
    /// Each batch is stored backwards (while per-key order is claimed).
    ReversesBatches,
    /// Group names are ignored: every member is a group of its own.
    IgnoresGroups,
    /// `close` of a publisher does nothing.
    CloseDoesNothing,
    /// A topic's trailing `x` or `_x` is dropped: names run together.
    MergesTopics,
    /// Invalid topic names are quietly accepted.
    AcceptsAnyTopic,
    /// Reopening loses everything.
    ReopenLosesAll,
    /// The foreign client drops the subject attribute.
    DropsSubject,
}

/// One connection's worth: the shared bus, this handle's closed flag.
#[derive(Clone)]
pub struct Handle {
    bus: Arc<Mutex<MemoryBus>>,
    fault: Fault,
    features: Features,
    closed: Arc<watch::Sender<bool>>,
    published: Arc<AtomicUsize>,
}

/// A backend with `fault`; `persistent` claims persistence and gives a
/// reopen hook (which keeps the bus, unless the fault loses it).
pub fn backend(fault: Fault, persistent: bool) -> Backend {
    let bus = Arc::new(Mutex::new(MemoryBus::new()));
    let mut features = Publisher::features(&*bus.lock().unwrap());
    features.persistent = persistent;
    let published = Arc::new(AtomicUsize::new(0));
    let make = {
        let (bus, features) = (Arc::clone(&bus), features.clone());
        move || Handle {
            bus: Arc::clone(&bus),
            fault,
            features: features.clone(),
            closed: Arc::new(watch::Sender::new(false)),
            published: Arc::clone(&published),
        }
    };
    let make_too = make.clone();
    let backend = Backend::new(
        format!("memory bus with fault {fault:?}"),
        features,
        move || std::future::ready(Ok(make())),
        move || std::future::ready(Ok(make_too())),
    )
    .patience(Duration::from_secs(3));
    if !persistent {
        return backend;
    }
    backend.reopen(move || {
        if fault == Fault::ReopenLosesAll {
            *bus.lock().unwrap() = MemoryBus::new();
        }
        std::future::ready(Ok(()))
    })
}

impl Handle {
    fn bus(&self) -> MemoryBus {
        self.bus.lock().unwrap().clone()
    }

    fn check_open(&self, what: &'static str) -> Result<(), BusError> {
        if *self.closed.borrow() {
            return Err(BusError::Closed {
                backend: "test handle".to_owned(),
                what,
            });
        }
        Ok(())
    }

    fn topic(&self, topic: &str) -> String {
        match self.fault {
            Fault::MergesTopics => topic
                .strip_suffix("_x")
                .or_else(|| topic.strip_suffix('x'))
                .unwrap_or(topic)
                .to_owned(),
            Fault::AcceptsAnyTopic if topic.is_empty() || topic.len() > 255 => {
                "sanitized".to_owned()
            }
            Fault::AcceptsAnyTopic => {
                topic.replace(|c: char| c.is_whitespace() || c.is_control(), "_")
            }
            _ => topic.to_owned(),
        }
    }

    fn deliver(fault: Fault, delivery: Delivery) -> BoxFuture<'static, Delivery> {
        Box::pin(async move {
            let (message, topic, attempt, acker) = delivery.into_parts();
            match fault {
                Fault::ChangesHeaders => {
                    let mut parts = message.into_parts();
                    parts
                        .headers
                        .insert("note".to_owned(), "changed".to_owned());
                    let message = Message::from_parts(parts).expect("still valid");
                    Delivery::new(message, topic, attempt, acker)
                }
                Fault::RestampsTime => {
                    let mut parts = message.into_parts();
                    parts.time = std::time::SystemTime::now();
                    let message = Message::from_parts(parts).expect("still valid");
                    Delivery::new(message, topic, attempt, acker)
                }
                Fault::AttemptAlwaysOne => Delivery::new(message, topic, 1, acker),
                Fault::AcksOnReceipt => {
                    let _ = acker.ack().await;
                    Delivery::new(message, topic, attempt, Box::new(Ignored))
                }
                _ => Delivery::new(message, topic, attempt, acker),
            }
        })
    }
}

/// An acker whose answers do nothing.
struct Ignored;

impl Acker for Ignored {
    fn ack(self: Box<Self>) -> BoxFuture<'static, Result<(), BusError>> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn nack(self: Box<Self>, _delay: Duration) -> BoxFuture<'static, Result<(), BusError>> {
        Box::pin(std::future::ready(Ok(())))
    }
}

impl Publisher for Handle {
    fn publish<'a>(
        &'a self,
        topic: &'a str,
        mut batch: Vec<Message>,
    ) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(async move {
            self.check_open("publisher")?;
            match self.fault {
                Fault::LosesMessages => {
                    batch.retain(|_| self.published.fetch_add(1, Ordering::Relaxed) % 50 != 49)
                }
                Fault::ReversesBatches => batch.reverse(),
                _ => {}
            }
            self.bus().publish(&self.topic(topic), batch).await
        })
    }

    fn close(&self) -> BoxFuture<'_, Result<(), BusError>> {
        if self.fault != Fault::CloseDoesNothing {
            self.closed.send_replace(true);
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn features(&self) -> Features {
        self.features.clone()
    }
}

impl Subscriber for Handle {
    fn subscribe<'a>(
        &'a self,
        topic: &'a str,
        mut options: SubscribeOptions,
    ) -> BoxFuture<'a, Result<Subscription, BusError>> {
        Box::pin(async move {
            self.check_open("subscriber")?;
            if self.fault == Fault::IgnoresGroups {
                options.group = None;
            }
            let inner = self.bus().subscribe(&self.topic(topic), options).await?;
            let mut closed = self.closed.subscribe();
            let fault = self.fault;
            let ended = async move {
                let _ = closed.wait_for(|closed| *closed).await;
            };
            let stream = inner.take_until(ended).then(move |next| async move {
                match next {
                    Ok(delivery) => Ok(Handle::deliver(fault, delivery).await),
                    Err(e) => Err(e),
                }
            });
            Ok(Subscription::new(stream))
        })
    }

    fn close(&self) -> BoxFuture<'_, Result<(), BusError>> {
        self.closed.send_replace(true);
        Box::pin(std::future::ready(Ok(())))
    }

    fn features(&self) -> Features {
        self.features.clone()
    }
}
