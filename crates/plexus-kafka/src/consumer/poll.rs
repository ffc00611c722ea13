//! The Kafka consumer behind a [`Hub`]: made, started at the group's
//! start, and polled on a thread of its own, which also answers
//! rebalances (an assigned partition continues from its commit and its
//! commit's progress; a revoked one waits for its deliveries' answers,
//! bounded by the members' ack deadline, and commits before it goes).

use std::sync::Arc;
use std::time::Duration;

use plexus_core::bus::StartFrom;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{Headers, Message as _};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};

use super::hub::{Commit, Hub};
use super::progress::Progress;
use crate::binding::{self, Origin};
use crate::config::KafkaConfig;

/// How long one poll waits for a record when nothing arrives.
const IDLE_POLL: Duration = Duration::from_millis(100);
/// How long one poll waits while fetching is paused (the hub is
/// checked for room in between).
const PAUSED_POLL: Duration = Duration::from_millis(5);

pub(crate) type KafkaConsumer = BaseConsumer<HubContext>;

/// The consumer's callbacks: rebalances go to the hub.
pub(crate) struct HubContext {
    hub: Arc<Hub>,
    topic: Arc<str>,
    request_timeout: Duration,
}

impl ClientContext for HubContext {}

impl ConsumerContext for HubContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => self.assigned(consumer, tpl),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => self.revoked(consumer, tpl),
            other => {
                tracing::warn!(topic = %self.topic, error = ?other, "a rebalance failed; giving up the assignment");
                let partitions = partitions(tpl);
                self.hub.revoke_begin(&partitions);
                self.hub.revoke_end(&partitions);
                let _ = consumer.unassign();
            }
        }
    }
}

impl HubContext {
    /// Continues each partition from its commit, with the progress its
    /// metadata records.
    fn assigned(&self, consumer: &KafkaConsumer, tpl: &TopicPartitionList) {
        let committed = consumer.committed_offsets(tpl.clone(), self.request_timeout);
        let committed = committed.unwrap_or_else(|error| {
            tracing::warn!(topic = %self.topic, %error, "reading the group's commits failed; starting from librdkafka's");
            tpl.clone()
        });
        let mut assignment = TopicPartitionList::with_capacity(committed.count());
        for element in committed.elements() {
            let (next, start) = match element.offset() {
                Offset::Offset(offset) => (Some(offset), Offset::Offset(offset)),
                _ => (None, Offset::Invalid),
            };
            let progress = Progress::decode(element.metadata());
            self.hub.assign(element.partition(), next, progress);
            let _ = assignment.add_partition_offset(element.topic(), element.partition(), start);
        }
        if let Err(error) = consumer.assign(&assignment) {
            tracing::error!(topic = %self.topic, %error, "taking the assigned partitions failed");
        }
    }

    /// Lets the revoked partitions' deliveries be answered (bounded),
    /// commits them and gives them up.
    fn revoked(&self, consumer: &KafkaConsumer, tpl: &TopicPartitionList) {
        let partitions = partitions(tpl);
        self.hub.revoke_begin(&partitions);
        self.hub
            .revoke_wait(&partitions, self.hub.longest_deadline());
        let _ordered = self.hub.commit_guard();
        let commits = self.hub.revoke_end(&partitions);
        if let Err(error) = commit(consumer, &self.topic, &commits) {
            tracing::warn!(topic = %self.topic, %error, "committing revoked partitions failed; their acknowledged messages may be delivered again");
        }
        let _ = consumer.unassign();
    }
}

fn partitions(tpl: &TopicPartitionList) -> Vec<i32> {
    tpl.elements().iter().map(|e| e.partition()).collect()
}

/// Commits `commits` of `topic` synchronously.
pub(crate) fn commit(consumer: &KafkaConsumer, topic: &str, commits: &[Commit]) -> KafkaResult<()> {
    if commits.is_empty() {
        return Ok(());
    }
    let mut tpl = TopicPartitionList::with_capacity(commits.len());
    for (partition, offset, metadata) in commits {
        tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))?;
        if let Some(mut element) = tpl.find_partition(topic, *partition) {
            element.set_metadata(metadata.as_str());
        }
    }
    consumer.commit(&tpl, CommitMode::Sync)
}

/// What a consumer is made for.
pub(crate) struct Plan {
    pub(crate) config: KafkaConfig,
    pub(crate) topic: Arc<str>,
    /// The Kafka group id; `None`: a subscription of its own, assigned
    /// every partition.
    pub(crate) group: Option<String>,
    pub(crate) start: StartFrom,
    pub(crate) partitions: i32,
}

/// Makes the consumer and joins its group (or takes every partition),
/// starting a new group where `plan.start` says. Blocking.
pub(crate) fn start(plan: &Plan, hub: Arc<Hub>) -> KafkaResult<Arc<KafkaConsumer>> {
    let config = &plan.config;
    let topic: &str = &plan.topic;
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.brokers)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("allow.auto.create.topics", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "roundrobin")
        .set("fetch.wait.max.ms", "100")
        .set("heartbeat.interval.ms", "500")
        .set(
            "session.timeout.ms",
            config.session_timeout.as_millis().to_string(),
        )
        // Room for the largest message in one partition's fetch (a broker
        // may send nothing rather than part of a record).
        .set(
            "max.partition.fetch.bytes",
            (2 * config.max_message_bytes + 64 * 1024).to_string(),
        )
        .set(
            "queued.max.messages.kbytes",
            config.fetch_ahead_kbytes.to_string(),
        )
        .set(
            "socket.timeout.ms",
            config.request_timeout.as_millis().to_string(),
        );
    // librdkafka assigns partitions only with a group id; a subscription
    // of its own never joins nor commits in it.
    let own = format!(
        "{}{topic}/~own-{:016x}",
        config.group_prefix,
        rand::random::<u64>()
    );
    client.set("group.id", plan.group.as_deref().unwrap_or(&own));
    let context = HubContext {
        hub: Arc::clone(&hub),
        topic: Arc::clone(&plan.topic),
        request_timeout: config.request_timeout,
    };
    let consumer: KafkaConsumer = client.create_with_context(context)?;
    let timeout = config.request_timeout;
    match &plan.group {
        Some(_) => {
            if plan.start == StartFrom::New {
                start_new_group(&consumer, topic, plan.partitions, timeout)?;
            }
            consumer.subscribe(&[topic])?;
        }
        None => {
            let mut assignment = TopicPartitionList::with_capacity(plan.partitions as usize);
            for partition in 0..plan.partitions {
                let start = match plan.start {
                    StartFrom::Earliest => Offset::Beginning,
                    StartFrom::New => {
                        let (_, high) = consumer.fetch_watermarks(topic, partition, timeout)?;
                        hub.assign(partition, Some(high), None);
                        Offset::Offset(high)
                    }
                };
                if plan.start == StartFrom::Earliest {
                    hub.assign(partition, None, None);
                }
                assignment.add_partition_offset(topic, partition, start)?;
            }
            consumer.assign(&assignment)?;
        }
    }
    Ok(Arc::new(consumer))
}

/// A new group starts at the end of each partition as it is now: the
/// partitions without a commit get one at their high watermark, so that
/// whatever is published after `subscribe` returns reaches the group even
/// before its members were assigned partitions.
fn start_new_group(
    consumer: &KafkaConsumer,
    topic: &str,
    partitions: i32,
    timeout: Duration,
) -> KafkaResult<()> {
    let mut tpl = TopicPartitionList::with_capacity(partitions as usize);
    tpl.add_partition_range(topic, 0, partitions - 1);
    let committed = consumer.committed_offsets(tpl, timeout)?;
    let mut start = TopicPartitionList::new();
    for element in committed.elements() {
        if matches!(element.offset(), Offset::Offset(_)) {
            continue;
        }
        let (_, high) = consumer.fetch_watermarks(topic, element.partition(), timeout)?;
        start.add_partition_offset(topic, element.partition(), Offset::Offset(high))?;
    }
    if start.count() == 0 {
        return Ok(());
    }
    consumer.commit(&start, CommitMode::Sync)
}

/// Polls until the hub stops, handing records to it and pausing fetching
/// while it is full; then commits everything and leaves the group.
pub(crate) fn run(consumer: Arc<KafkaConsumer>, hub: Arc<Hub>, topic: Arc<str>) {
    let mut paused = false;
    while !hub.stop.is_cancelled() {
        let timeout = if paused { PAUSED_POLL } else { IDLE_POLL };
        let mut full = false;
        match consumer.poll(timeout) {
            Some(Ok(record)) => {
                let origin = Origin {
                    topic: &topic,
                    partition: record.partition(),
                    offset: record.offset(),
                    timestamp: record.timestamp().to_millis(),
                };
                let headers = record.headers().into_iter().flat_map(|h| h.iter());
                let message = binding::decode(headers, record.key(), record.payload(), &origin);
                full = hub.receive(origin.partition, origin.offset, message);
            }
            Some(Err(error)) => log_error(&topic, &error),
            None => {}
        }
        if full && !paused {
            paused = set_paused(&consumer, true);
        } else if paused && hub.has_room() {
            paused = !set_paused(&consumer, false);
        }
    }
    if hub.grouped {
        let _ordered = hub.commit_guard();
        let (_, commits) = hub.commits(true);
        hub.remember(&commits);
        let result = commit(&consumer, &topic, &commits).map_err(|e| e.to_string());
        if let Err(error) = &result {
            tracing::warn!(topic = %topic, %error, "the last commit before leaving failed; acknowledged messages may be delivered again");
        }
        let _ = hub.committed.send_replace((u64::MAX, result));
    }
    consumer.unsubscribe();
}

/// Pauses or resumes every assigned partition; whether it worked.
fn set_paused(consumer: &KafkaConsumer, pause: bool) -> bool {
    let Ok(assignment) = consumer.assignment() else {
        return false;
    };
    let done = if pause {
        consumer.pause(&assignment)
    } else {
        consumer.resume(&assignment)
    };
    done.is_ok()
}

fn log_error(topic: &str, error: &KafkaError) {
    tracing::debug!(topic = %topic, %error, "consumer error (librdkafka retries)");
}
