//! With `NatsConfig::deduplicate`, a batch published again (a retry after
//! an error) is stored once; without it, twice. Against the machine's
//! server (`PLEXUS_TEST_NATS`); skips with one line when it is
//! unreachable, fails then with `CI=true`.

use std::time::Duration;

use futures::StreamExt;
use plexus_core::Message;
use plexus_core::bus::{Publisher, SubscribeOptions, Subscriber};
use plexus_nats::{NatsBus, NatsConfig};

async fn bus(deduplicate: bool) -> Option<NatsBus> {
    let url =
        std::env::var("PLEXUS_TEST_NATS").unwrap_or_else(|_| plexus_nats::DEFAULT_URL.to_owned());
    let mut config = NatsConfig::new(&url);
    config.stream = "PLEXUS_DEDUPE_TEST".to_owned();
    config.subject_prefix = "plexus_dedupe_test".to_owned();
    config.max_age = Duration::from_secs(600);
    config.deduplicate = deduplicate;
    match NatsBus::with_config(config).await {
        Ok(bus) => Some(bus),
        Err(error) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("NATS JetStream is required with CI=true: {error}")
        }
        Err(error) => {
            println!("skipped: NATS JetStream unreachable at {url}: {error}");
            None
        }
    }
}

/// How many messages a new group reads from the start of `topic` before
/// the one with subject `end` (published last: one member reads a
/// subject in stream order).
async fn stored_before_end(bus: &NatsBus, topic: &str) -> usize {
    let options = SubscribeOptions::group("count").from_earliest();
    let mut subscription = bus.subscribe(topic, options).await.unwrap();
    let mut count = 0;
    loop {
        let delivery = tokio::time::timeout(Duration::from_secs(10), subscription.next())
            .await
            .expect("the end marker within 10 s")
            .expect("an open subscription")
            .unwrap();
        let end = delivery.message().subject() == Some("end");
        delivery.ack().await.unwrap();
        if end {
            return count;
        }
        count += 1;
    }
}

#[tokio::test]
async fn a_republished_batch_is_stored_once_only_with_deduplication() {
    for (deduplicate, expected) in [(true, 3), (false, 6)] {
        let Some(bus) = bus(deduplicate).await else {
            return;
        };
        let topic = format!("dedupe_{deduplicate}_{:016x}", rand_suffix());
        let batch: Vec<Message> = (0..3)
            .map(|n| {
                Message::builder("t", "/dedupe")
                    .subject(n.to_string())
                    .build()
                    .unwrap()
            })
            .collect();
        bus.publish(&topic, batch.clone()).await.unwrap();
        bus.publish(&topic, batch).await.unwrap();
        let end = Message::builder("t", "/dedupe")
            .subject("end")
            .build()
            .unwrap();
        bus.publish(&topic, vec![end]).await.unwrap();
        assert_eq!(
            stored_before_end(&bus, &topic).await,
            expected,
            "deduplicate: {deduplicate}"
        );
        Publisher::close(&bus).await.unwrap();
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
