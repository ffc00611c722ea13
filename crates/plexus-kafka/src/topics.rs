//! Topics on the brokers: made on first use (Kafka brokers may refuse to
//! make them on their own), their partition counts remembered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use plexus_core::bus::BusError;
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::error::RDKafkaErrorCode;

use crate::bus::Shared as Bus;

/// How often a topic just made is looked up until the brokers list it.
const SETTLE: Duration = Duration::from_millis(50);

/// The partition counts of the topics this bus handle used.
#[derive(Default)]
pub(crate) struct Topics {
    known: Mutex<HashMap<String, i32>>,
}

impl Topics {
    /// The partition count of `topic`, made first when it does not exist.
    pub(crate) async fn ensure(&self, bus: &Arc<Bus>, topic: &str) -> Result<i32, BusError> {
        if let Some(known) = self.lock().get(topic) {
            return Ok(*known);
        }
        let partitions = match partitions(bus, topic).await? {
            Some(partitions) => partitions,
            None => {
                create(bus, topic).await?;
                let give_up = tokio::time::Instant::now() + bus.config.request_timeout;
                loop {
                    if let Some(partitions) = partitions(bus, topic).await? {
                        break partitions;
                    }
                    if tokio::time::Instant::now() > give_up {
                        return Err(bus.error(
                            &format!("making topic `{topic}`"),
                            "the brokers do not list it after creating it",
                        ));
                    }
                    tokio::time::sleep(SETTLE).await;
                }
            }
        };
        self.lock().insert(topic.to_owned(), partitions);
        Ok(partitions)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, i32>> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The partition count of `topic`; `None` when the brokers do not know it.
async fn partitions(bus: &Arc<Bus>, topic: &str) -> Result<Option<i32>, BusError> {
    let (for_lookup, name) = (Arc::clone(bus), topic.to_owned());
    let found = tokio::task::spawn_blocking(move || {
        let metadata = for_lookup
            .admin
            .inner()
            .fetch_metadata(Some(&name), for_lookup.config.request_timeout)?;
        Ok::<_, rdkafka::error::KafkaError>(
            metadata
                .topics()
                .iter()
                .find(|t| t.name() == name && t.error().is_none())
                .map(|t| t.partitions().len() as i32)
                .filter(|n| *n > 0),
        )
    })
    .await;
    let doing = format!("looking up topic `{topic}`");
    match found {
        Ok(Ok(partitions)) => Ok(partitions),
        Ok(Err(error)) => Err(bus.error(&doing, error)),
        Err(error) => Err(bus.error(&doing, error)),
    }
}

/// Makes `topic` with the configured partitions and replication (one
/// that exists already is fine).
async fn create(bus: &Bus, topic: &str) -> Result<(), BusError> {
    let new = NewTopic::new(
        topic,
        bus.config.partitions,
        TopicReplication::Fixed(bus.config.replication),
    );
    let options = AdminOptions::new().operation_timeout(Some(bus.config.request_timeout));
    let doing = format!("making topic `{topic}`");
    let results = bus
        .admin
        .create_topics([&new], &options)
        .await
        .map_err(|e| bus.error(&doing, e))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(bus.error(&doing, code)),
        }
    }
    Ok(())
}
