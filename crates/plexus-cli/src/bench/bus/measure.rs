//! One plexus measurement: publishers and a consumer group on a fresh
//! topic of the backend.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::SystemTime;

use anyhow::Context as _;
use cpu_time::ProcessTime;
use futures::stream::FuturesUnordered;
use futures::{FutureExt as _, StreamExt as _};
use hdrhistogram::Histogram;
use plexus_bus::memory::MemoryBus;
use plexus_core::Message;
use plexus_core::bus::{Publisher, SubscribeOptions, Subscriber};
use plexus_nats::NatsBus;
use plexus_postgres::PostgresBus;
use plexus_rabbitmq::RabbitBus;
use plexus_sqlite::SqliteBus;
use serde::Serialize;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{BATCH, Backend, CONSUMERS, Workload};

/// Deliveries one consumer holds unacknowledged at most: enough for the
/// group to keep up with 16 publishers on the SQLite bus, whose deliveries
/// come a commit after they are claimed (with 256, its consumers fell
/// behind by a median of 140–270 ms and the measurement was of the lag).
pub const MAX_IN_FLIGHT: usize = 1024;

/// The figures of one measurement.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Measured {
    /// Messages acknowledged per second, from the first publish to the
    /// last acknowledgement.
    pub throughput: f64,
    /// Messages published per second, until the last publish returned.
    pub publish_throughput: f64,
    /// Median end-to-end latency, µs.
    pub p50_us: f64,
    /// 99th percentile end-to-end latency, µs.
    pub p99_us: f64,
    /// From the first warm-up publish until every warm-up message was
    /// acknowledged, ms (0 without a warm-up): what starting cold costs.
    pub warmup_ms: f64,
    /// CPU time of this process (every thread: the bench, the client or
    /// bus, and for the embedded buses their engine; not a broker's)
    /// while measuring, per message, µs.
    pub cpu_us_per_msg: Option<f64>,
}

/// Batches every measurement of a broker backend sends and consumes
/// before it measures (shared among the publishers, at least one each):
/// the first batches on a fresh stream, queue, topic or schema and fresh
/// connections pay for what a running service pays once (plans, caches,
/// leaders), and at 200 batches a round they set its p99 on their own.
pub const WARMUP_BATCHES: u64 = 10;

/// The phases of a measurement: its warm-up, whose messages are consumed
/// and acknowledged before any measured one is published, then the
/// measurement, whose end the consumers wait for (the flag is read after
/// arming the notification, so none misses it).
pub(super) struct Done {
    pub(super) flag: AtomicBool,
    pub(super) notify: Notify,
    /// Warm-up messages per publisher.
    warm: u64,
    /// Warm-up messages in all.
    warm_total: u64,
    warmed: Notify,
    /// When the first publisher began.
    began: OnceLock<Instant>,
    /// When the measurement began, and the process's CPU time then: set
    /// once every warm-up message was acknowledged (deliveries from then
    /// on are measured), or as the first publisher begins without one.
    measured_from: OnceLock<(Instant, Option<ProcessTime>)>,
}

impl Done {
    /// The phases of a measurement of `backend` with `publishers`.
    pub(super) fn new(backend: Backend, publishers: usize) -> Self {
        let warm = match backend {
            Backend::Memory | Backend::Sqlite => 0,
            _ => WARMUP_BATCHES.div_ceil(publishers as u64) * BATCH as u64,
        };
        Done {
            flag: AtomicBool::new(false),
            notify: Notify::new(),
            warm,
            warm_total: warm * publishers as u64,
            warmed: Notify::new(),
            began: OnceLock::new(),
            measured_from: OnceLock::new(),
        }
    }

    /// Whether deliveries are measured (the warm-up is over).
    pub(super) fn measuring(&self) -> bool {
        self.measured_from.get().is_some()
    }

    fn start_measuring(&self) {
        let _ = self
            .measured_from
            .set((Instant::now(), ProcessTime::try_now().ok()));
        self.warmed.notify_waiters();
    }

    /// The size of a publisher's next batch after `sent` messages, `count`
    /// of them measured (its warm-up first; the first measured batch waits
    /// until every warm-up message was acknowledged); `None` when it sent
    /// them all.
    pub(super) async fn next_batch(&self, sent: u64, count: u64) -> Option<u64> {
        let began = *self.began.get_or_init(Instant::now);
        if self.warm_total == 0 {
            self.measured_from
                .get_or_init(|| (began, ProcessTime::try_now().ok()));
        }
        if sent < self.warm {
            return Some((self.warm - sent).min(BATCH as u64));
        }
        if sent >= self.warm + count {
            return None;
        }
        loop {
            let warmed = self.warmed.notified();
            tokio::pin!(warmed);
            warmed.as_mut().enable();
            if self.measuring() {
                break;
            }
            warmed.await;
        }
        Some((self.warm + count - sent).min(BATCH as u64))
    }
}

/// Counts one acknowledgement; after the last warm-up message starts the
/// measurement; at the last of the `messages` measured, ends it and says
/// so.
pub(super) fn count_ack(acked: &AtomicU64, done: &Done, messages: u64) -> bool {
    let count = acked.fetch_add(1, Ordering::AcqRel) + 1;
    if count == done.warm_total {
        done.start_measuring();
    }
    if count < done.warm_total + messages {
        return false;
    }
    done.flag.store(true, Ordering::Release);
    done.notify.notify_waiters();
    true
}

/// A histogram of microseconds, 1 µs to 10 min.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// Microseconds since `time`.
pub fn since_us(time: SystemTime) -> u64 {
    // Seconds and microseconds apart: no 128-bit division per message.
    SystemTime::now().duration_since(time).map_or(1, |d| {
        d.as_secs()
            .saturating_mul(1_000_000)
            .saturating_add(u64::from(d.subsec_micros()))
            .max(1)
    })
}

/// Microseconds since the Unix epoch (the raw baselines' send stamps).
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// A batch of `n` messages with `payload`-byte payloads, stamped now;
/// with `keys` > 0, message `first + i` has key `k{(first + i) % keys}`.
pub fn batch(n: usize, payload: usize, first: u64, keys: u64) -> Vec<Message> {
    let now = SystemTime::now();
    let body = bytes::Bytes::from(vec![b'x'; payload]);
    (0..n as u64)
        .map(|i| {
            let mut builder = Message::builder("plexus.bench.Event", "/plexus/bench")
                .time(now)
                .payload("application/octet-stream", body.clone());
            if keys > 0 {
                builder = builder.key(format!("k{}", (first + i) % keys));
            }
            builder.build().expect("a valid bench message")
        })
        .collect()
}

async fn open(
    backend: Backend,
    path: &Path,
) -> anyhow::Result<(Arc<dyn Publisher>, Arc<dyn Subscriber>)> {
    Ok(match backend {
        Backend::Memory => {
            let bus = MemoryBus::new();
            (Arc::new(bus.clone()), Arc::new(bus))
        }
        Backend::Sqlite => {
            let file = path.with_extension("plexus.db");
            let bus = SqliteBus::open(&file)
                .await
                .with_context(|| format!("opening the SQLite bus at {}", file.display()))?;
            (Arc::new(bus.clone()), Arc::new(bus))
        }
        Backend::Nats => halves(NatsBus::with_config(super::nats::config(path).await?).await?),
        Backend::Rabbitmq => halves(RabbitBus::with_config(super::rabbitmq::config(path)?).await?),
        #[cfg(feature = "kafka")]
        Backend::Kafka => {
            halves(plexus_kafka::KafkaBus::with_config(super::kafka::config(path)?).await?)
        }
        Backend::Postgres => {
            halves(PostgresBus::with_config(super::postgres::config(path).await?).await?)
        }
    })
}

fn halves<B>(bus: B) -> (Arc<dyn Publisher>, Arc<dyn Subscriber>)
where
    B: Publisher + Subscriber + Clone + 'static,
{
    (Arc::new(bus.clone()), Arc::new(bus))
}

/// The topic of the measurement at `path`: a fresh one where the broker
/// keeps topics apart only by name.
fn topic(backend: Backend, path: &Path) -> String {
    match backend {
        #[cfg(feature = "kafka")]
        Backend::Kafka => super::kafka::topic(path),
        _ => "bench".to_owned(),
    }
}

/// Publishes `messages` from `publishers` tasks while the group consumes
/// them.
pub async fn plexus(workload: Workload, path: PathBuf) -> anyhow::Result<Measured> {
    let Workload {
        backend,
        payload,
        publishers,
        messages,
        keys,
    } = workload;
    let path = path.as_path();
    let (publisher, subscriber) = open(backend, path).await?;
    let topic: Arc<str> = topic(backend, path).into();
    let acked = Arc::new(AtomicU64::new(0));
    let done = Arc::new(Done::new(backend, publishers));
    let mut consumers = Vec::new();
    for _ in 0..CONSUMERS {
        let options = SubscribeOptions::group("bench").max_in_flight(MAX_IN_FLIGHT);
        let mut subscription = subscriber.subscribe(&topic, options).await?;
        let (acked, done) = (Arc::clone(&acked), Arc::clone(&done));
        consumers.push(tokio::spawn(async move {
            let mut latency = histogram();
            let mut acks = FuturesUnordered::new();
            // Armed before the flag is read: a consumer first polled after
            // the last acknowledgement sees the flag, any other is woken.
            let finished = done.notify.notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            if done.flag.load(Ordering::Acquire) {
                return Ok(latency);
            }
            loop {
                tokio::select! {
                    () = &mut finished => break,
                    Some(result) = acks.next(), if !acks.is_empty() => {
                        let result: Result<(), plexus_core::bus::BusError> = result;
                        result?;
                        if count_ack(&acked, &done, messages) {
                            break;
                        }
                    }
                    next = subscription.next() => {
                        let Some(delivery) = next else { break };
                        let delivery = delivery?;
                        if done.measuring() {
                            latency.saturating_record(since_us(delivery.message().time()));
                        }
                        // An answer the backend records at once (the
                        // in-memory bus) is counted now; one that waits
                        // (for a commit) runs beside the next deliveries.
                        let (_, _, _, acker) = delivery.into_parts();
                        let mut ack = acker.ack();
                        match (&mut ack).now_or_never() {
                            Some(result) => {
                                result?;
                                if count_ack(&acked, &done, messages) {
                                    break;
                                }
                            }
                            None => acks.push(ack),
                        }
                    }
                }
            }
            Ok::<_, anyhow::Error>(latency)
        }));
    }
    let mut senders = Vec::new();
    for (p, count) in super::baseline::shares(publishers, messages)
        .into_iter()
        .enumerate()
    {
        let (publisher, topic, done) = (
            Arc::clone(&publisher),
            Arc::clone(&topic),
            Arc::clone(&done),
        );
        senders.push(tokio::spawn(async move {
            let mut sent = 0;
            while let Some(n) = done.next_batch(sent, count).await {
                let first = p as u64 * count + sent;
                publisher
                    .publish(&topic, batch(n as usize, payload, first, keys))
                    .await?;
                sent += n;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    let measured = finish(&done, senders, consumers, messages).await?;
    anyhow::ensure!(
        acked.load(Ordering::Acquire) >= done.warm_total + messages,
        "only {} of {} messages (with the warm-up) were acknowledged",
        acked.load(Ordering::Acquire),
        done.warm_total + messages
    );
    publisher.close().await?;
    subscriber.close().await?;
    match backend {
        Backend::Memory | Backend::Sqlite => {}
        Backend::Nats => super::nats::cleanup(path).await?,
        Backend::Rabbitmq => super::rabbitmq::cleanup(path).await?,
        #[cfg(feature = "kafka")]
        // All at the end of the run (`kafka::cleanup_run`).
        Backend::Kafka => {}
        Backend::Postgres => super::postgres::cleanup(path).await?,
    }
    Ok(measured)
}

/// Waits for the publishers, then the consumers (each returning its
/// latencies), of a measurement of `messages` in the phases of `done`.
pub async fn finish(
    done: &Done,
    senders: Vec<JoinHandle<anyhow::Result<()>>>,
    consumers: Vec<JoinHandle<anyhow::Result<Histogram<u64>>>>,
    messages: u64,
) -> anyhow::Result<Measured> {
    for sender in senders {
        sender.await.context("a publisher panicked")??;
    }
    let published = Instant::now();
    let mut latency = histogram();
    for consumer in consumers {
        let part = consumer.await.context("a consumer panicked")??;
        latency.add(&part).expect("histograms with the same bounds");
    }
    let ended = Instant::now();
    let (Some(began), Some((from, cpu_from))) = (done.began.get(), done.measured_from.get()) else {
        anyhow::bail!("the measurement ended before it began");
    };
    let cpu = cpu_from
        .and_then(|from| Some(ProcessTime::try_now().ok()?.duration_since(from)))
        .map(|cpu| cpu.as_secs_f64() * 1e6 / messages as f64);
    Ok(Measured {
        throughput: messages as f64 / (ended - *from).as_secs_f64(),
        publish_throughput: messages as f64 / (published - *from).as_secs_f64(),
        p50_us: latency.value_at_quantile(0.50) as f64,
        p99_us: latency.value_at_quantile(0.99) as f64,
        warmup_ms: (*from - *began).as_secs_f64() * 1000.0,
        cpu_us_per_msg: cpu,
    })
}
