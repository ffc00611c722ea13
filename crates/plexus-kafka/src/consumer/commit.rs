//! The committer of a group's hub: gathers the acknowledgements made
//! while the previous commit was under way into the next one, so that an
//! acknowledgement returns once a commit carrying it is stored.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::hub::Hub;
use super::poll::{KafkaConsumer, commit};

/// Tries of one commit before its acknowledgements fail.
const TRIES: u32 = 3;
/// The pause after a failed try, times the try's number.
const BACKOFF: Duration = Duration::from_millis(50);

/// Commits whenever acknowledgements want it, until the hub stops (its
/// poll thread commits last).
pub(crate) async fn run(hub: Arc<Hub>, consumer: Weak<KafkaConsumer>, topic: Arc<str>) {
    loop {
        tokio::select! {
            () = hub.commit_wanted.notified() => {}
            () = hub.stop.cancelled() => return,
        }
        let mut result = Ok(());
        let mut number = 0;
        for attempt in 1..=TRIES {
            let Some(consumer) = consumer.upgrade() else {
                result = Err("the consumer is closed".to_owned());
                break;
            };
            let (hub, topic) = (Arc::clone(&hub), Arc::clone(&topic));
            let done = tokio::task::spawn_blocking(move || {
                let _ordered = hub.commit_guard();
                let (started, commits) = hub.commits(false);
                let result = commit(&consumer, &topic, &commits).map_err(|e| e.to_string());
                if result.is_err() {
                    hub.uncommitted(&commits);
                }
                (started, result)
            })
            .await;
            (number, result) = match done {
                Ok(done) => done,
                Err(error) => (number, Err(error.to_string())),
            };
            if result.is_ok() {
                break;
            }
            tokio::time::sleep(BACKOFF * attempt).await;
        }
        let _ = hub.committed.send_replace((number, result));
    }
}
