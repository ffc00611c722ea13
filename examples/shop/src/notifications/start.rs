//! Running the notification groups on a [`Router`].

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use plexus_bus::router::{Incoming, NeverRan, Outgoing, Router, RouterError, Running, handler_fn};
use plexus_core::bus::{Publisher, SubscribeOptions, Subscriber};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower::BoxError;

use super::GROUPS;
use super::metrics::NotificationsMetrics;
use crate::orders::{ORDER_PLACED_TOPIC, OrderPlaced};

/// Timings of the notification handlers.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NotificationsConfig {
    /// How long sending one notification takes (simulated). Default 1 ms.
    pub send_time: Duration,
    /// Deliveries one member holds at once. Default 4.
    pub max_in_flight: usize,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        NotificationsConfig {
            send_time: Duration::from_millis(1),
            max_in_flight: 4,
        }
    }
}

/// The notification groups, running.
#[derive(Debug)]
pub struct Notifications {
    metrics: Arc<NotificationsMetrics>,
    running: Running,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), RouterError>>,
}

/// Starts every group's members on `subscriber` (dead letters and outputs,
/// of which there are none, would go to `publisher`). Where the bus can
/// replay, the groups start at the earliest retained event, so none placed
/// before they joined is missed; elsewhere (RabbitMQ's queues keep only
/// what arrives once they exist) wait for [`Notifications::subscribed`]
/// before publishing.
pub fn start(
    subscriber: Arc<dyn Subscriber>,
    publisher: Arc<dyn Publisher>,
    config: NotificationsConfig,
) -> Notifications {
    let metrics = Arc::new(NotificationsMetrics::default());
    let replay = subscriber.features().replay;
    let mut router = Router::new(subscriber, publisher);
    for (group, members) in GROUPS {
        for n in 1..=members {
            let member = if members == 1 {
                group.to_owned()
            } else {
                format!("{group}-{n}")
            };
            let mut options = SubscribeOptions::group(group).max_in_flight(config.max_in_flight);
            if replay {
                options = options.from_earliest();
            }
            let handler = notify(
                group,
                member.clone(),
                Arc::clone(&metrics),
                config.send_time,
            );
            router = router.route(member, ORDER_PLACED_TOPIC, options, handler);
        }
    }
    let running = router.running();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(router.run(async {
        let _ = stopped.await;
    }));
    Notifications {
        metrics,
        running,
        stop,
        task,
    }
}

fn notify(
    group: &'static str,
    member: String,
    metrics: Arc<NotificationsMetrics>,
    send_time: Duration,
) -> impl plexus_bus::router::Handler {
    handler_fn(move |incoming: Incoming| {
        let (member, metrics) = (member.clone(), Arc::clone(&metrics));
        async move {
            let event = OrderPlaced::from_message(&incoming.message)?;
            tokio::time::sleep(send_time).await;
            let delay = SystemTime::now()
                .duration_since(incoming.message.time())
                .unwrap_or_default();
            metrics.record(group, &member, &event.order_id, delay);
            Ok::<Vec<Outgoing>, BoxError>(Vec::new())
        }
    })
}

impl Notifications {
    /// Resolves once every member has subscribed: events published from
    /// then on reach every group. An error when the router stopped first
    /// (a member could not subscribe; [`shutdown`](Self::shutdown) says why).
    pub async fn subscribed(&self) -> Result<(), NeverRan> {
        self.running.clone().wait().await
    }

    /// What the groups received.
    pub fn metrics(&self) -> &Arc<NotificationsMetrics> {
        &self.metrics
    }

    /// Stops taking events, lets handlers in progress finish, and waits.
    pub async fn shutdown(self) -> Result<(), RouterError> {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(result) => result,
            Err(join) => {
                tracing::error!(error = %join, "the notifications router panicked");
                Ok(())
            }
        }
    }
}
