//! The Router and its layers on the in-memory bus.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::StreamExt as _;
use plexus_bus::memory::MemoryBus;
use plexus_bus::router::{
    Backoff, DeadLetterLayer, DeadlineLayer, Incoming, KeyLanesLayer, Outgoing, RetryLayer, Router,
    RouterError, dead_letter_headers, handler_fn,
};
use plexus_core::Message;
use plexus_core::bus::{Publisher, SubscribeOptions, Subscriber, Subscription};
use tokio::sync::oneshot;
use tower::{BoxError, Service as _, ServiceBuilder, ServiceExt as _};

const BOUND: Duration = Duration::from_secs(10);

fn message(key: &str, n: usize) -> Message {
    Message::builder("test.Event", "/router")
        .key(key)
        .payload("text/plain", format!("{key}-{n}"))
        .build()
        .unwrap()
}

fn text(message: &Message) -> String {
    String::from_utf8(message.payload().to_vec()).unwrap()
}

async fn take(subscription: &mut Subscription, n: usize) -> Vec<Message> {
    let mut got = Vec::new();
    while got.len() < n {
        let delivery = tokio::time::timeout(BOUND, subscription.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} messages arrived", got.len()))
            .expect("the subscription ended")
            .unwrap();
        got.push(delivery.message().clone());
        delivery.ack().await.unwrap();
    }
    got
}

/// A router running on a task of its own until told to stop.
struct Running {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), RouterError>>,
}

impl Running {
    /// Stops the router and waits for it to end cleanly.
    async fn stop(self) {
        self.stop.send(()).unwrap();
        self.task.await.unwrap().unwrap();
    }
}

fn start(router: Router) -> Running {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(router.run(async {
        let _ = stopped.await;
    }));
    Running { stop, task }
}

/// Every message published to `topic` from now on, in a private group.
async fn watch(bus: &MemoryBus, topic: &str) -> Subscription {
    bus.subscribe(topic, SubscribeOptions::default())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_are_published_and_inputs_acknowledged() {
    let bus = Arc::new(MemoryBus::new());
    let mut out = watch(&bus, "shipped").await;
    let handler = handler_fn(|incoming: Incoming| async move {
        let reply = Message::builder("test.Shipped", "/router")
            .payload("text/plain", format!("shipped {}", text(&incoming.message)))
            .build()?;
        Ok::<_, BoxError>(vec![Outgoing::new("shipped", reply)])
    });
    let router = Router::new(bus.clone(), bus.clone()).route(
        "ship",
        "orders",
        SubscribeOptions::group("shipping").from_earliest(),
        handler,
    );
    bus.publish("orders", (0..50).map(|n| message("k", n)).collect())
        .await
        .unwrap();
    let running = start(router);
    let got = take(&mut out, 50).await;
    let texts: Vec<String> = got.iter().map(text).collect();
    let expected: Vec<String> = (0..50).map(|n| format!("shipped k-{n}")).collect();
    assert_eq!(texts, expected, "per-key order through the router");
    running.stop().await;
    // Everything was acknowledged: a new member of the group gets nothing.
    let mut again = bus
        .subscribe("orders", SubscribeOptions::group("shipping"))
        .await
        .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(200), again.next())
            .await
            .is_err(),
        "an acknowledged message was delivered again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_message_is_dead_lettered_after_max_attempts_and_others_flow() {
    let bus = Arc::new(MemoryBus::new());
    let mut dead = watch(&bus, "orders.dead").await;
    let mut out = watch(&bus, "done").await;
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let handler = handler_fn(move |incoming: Incoming| {
        let counted = Arc::clone(&counted);
        async move {
            if incoming.message.key() == Some("poison") {
                counted.fetch_add(1, Ordering::SeqCst);
                return Err::<Vec<Outgoing>, BoxError>("cannot parse the order".into());
            }
            Ok(vec![Outgoing::new("done", incoming.message)])
        }
    });
    let handler = ServiceBuilder::new()
        .layer(DeadLetterLayer::new(bus.clone(), "orders.dead", 3))
        .service(handler);
    let router = Router::new(bus.clone(), bus.clone())
        .nack_delay(Duration::from_millis(5))
        .route(
            "orders",
            "orders",
            SubscribeOptions::group("g").from_earliest(),
            handler,
        );
    bus.publish("orders", vec![message("poison", 0)])
        .await
        .unwrap();
    bus.publish("orders", (0..20).map(|n| message("good", n)).collect())
        .await
        .unwrap();
    let running = start(router);
    let done = take(&mut out, 20).await;
    assert!(done.iter().all(|m| m.key() == Some("good")));
    let letters = take(&mut dead, 1).await;
    let letter = &letters[0];
    assert_eq!(letter.key(), Some("poison"));
    assert_eq!(text(letter), "poison-0", "the original payload is kept");
    assert_eq!(letter.header(dead_letter_headers::ATTEMPT), Some("3"));
    assert_eq!(letter.header(dead_letter_headers::TOPIC), Some("orders"));
    assert_eq!(
        letter.header(dead_letter_headers::REASON),
        Some("max-attempts")
    );
    assert_eq!(
        letter.header(dead_letter_headers::ERROR),
        Some("cannot parse the order")
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "handled exactly max_attempts times"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_message_is_dead_lettered_without_reaching_the_handler() {
    let bus = Arc::new(MemoryBus::new());
    let mut dead = watch(&bus, "dead").await;
    let mut out = watch(&bus, "done").await;
    let handled = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&handled);
    let handler = handler_fn(move |incoming: Incoming| {
        let seen = Arc::clone(&seen);
        async move {
            seen.lock().unwrap().push(text(&incoming.message));
            Ok::<_, BoxError>(vec![Outgoing::new("done", incoming.message)])
        }
    });
    let handler = ServiceBuilder::new()
        .layer(DeadLetterLayer::new(bus.clone(), "dead", 5))
        .layer(DeadlineLayer)
        .service(handler);
    let published_long_ago = SystemTime::now() - Duration::from_secs(60);
    let expired = Message::builder("test.Event", "/router")
        .time(published_long_ago)
        .header("plexus-timeout-ms", "1000")
        .payload("text/plain", "expired")
        .build()
        .unwrap();
    let fresh = Message::builder("test.Event", "/router")
        .header("plexus-timeout-ms", "60000")
        .payload("text/plain", "fresh")
        .build()
        .unwrap();
    bus.publish("in", vec![expired, fresh]).await.unwrap();
    let router = Router::new(bus.clone(), bus.clone()).route(
        "r",
        "in",
        SubscribeOptions::group("g").from_earliest(),
        handler,
    );
    let running = start(router);
    assert_eq!(text(&take(&mut out, 1).await[0]), "fresh");
    let letter = take(&mut dead, 1).await.remove(0);
    assert_eq!(text(&letter), "expired");
    assert_eq!(letter.header(dead_letter_headers::REASON), Some("expired"));
    assert_eq!(letter.header(dead_letter_headers::ATTEMPT), Some("1"));
    assert!(
        letter
            .header(dead_letter_headers::ERROR)
            .unwrap()
            .contains("expired")
    );
    assert_eq!(*handled.lock().unwrap(), vec!["fresh".to_owned()]);
    running.stop().await;
}

#[tokio::test(start_paused = true)]
async fn retries_wait_with_growing_jittered_backoff_then_give_up() {
    let tries = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&tries);
    let handler = handler_fn(move |_incoming: Incoming| {
        let seen = Arc::clone(&seen);
        async move {
            seen.lock().unwrap().push(tokio::time::Instant::now());
            Err::<Vec<Outgoing>, BoxError>("down".into())
        }
    });
    let backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_millis(300),
    };
    let mut service = ServiceBuilder::new()
        .layer(RetryLayer::new(4, backoff))
        .service(handler);
    let incoming = Incoming {
        message: message("k", 0),
        topic: "t".into(),
        attempt: 1,
    };
    let result = service.ready().await.unwrap().call(incoming).await;
    assert!(result.is_err(), "still failing after the retries");
    let tries = tries.lock().unwrap().clone();
    assert_eq!(tries.len(), 5, "the first try and four retries");
    for (n, pair) in tries.windows(2).enumerate() {
        let waited = pair[1] - pair[0];
        assert!(
            waited <= backoff.cap(n as u32),
            "wait {n} was {waited:?}, over its cap {:?}",
            backoff.cap(n as u32)
        );
    }
    assert_eq!(backoff.cap(0), Duration::from_millis(100));
    assert_eq!(backoff.cap(1), Duration::from_millis(200));
    assert_eq!(backoff.cap(5), Duration::from_millis(300), "capped at max");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_lanes_run_one_key_at_a_time_in_call_order_and_keys_in_parallel() {
    type Gates = Arc<Mutex<HashMap<String, oneshot::Receiver<()>>>>;
    let gates: Gates = Arc::default();
    let log = Arc::new(Mutex::new(Vec::new()));
    let (g, l) = (Arc::clone(&gates), Arc::clone(&log));
    let handler = handler_fn(move |incoming: Incoming| {
        let (gates, log) = (Arc::clone(&g), Arc::clone(&l));
        async move {
            let name = text(&incoming.message);
            log.lock().unwrap().push(format!("start {name}"));
            let gate = gates.lock().unwrap().remove(&name);
            if let Some(gate) = gate {
                let _ = gate.await;
            }
            log.lock().unwrap().push(format!("end {name}"));
            Ok::<_, BoxError>(Vec::new())
        }
    });
    let mut lanes = ServiceBuilder::new().layer(KeyLanesLayer).service(handler);
    let (open_a0, gate) = oneshot::channel();
    gates.lock().unwrap().insert("a-0".to_owned(), gate);
    let mut calls = Vec::new();
    for (key, n) in [("a", 0), ("a", 1), ("b", 0), ("a", 2)] {
        let call = lanes.ready().await.unwrap().call(Incoming {
            message: message(key, n),
            topic: "t".into(),
            attempt: 1,
        });
        calls.push(tokio::spawn(call));
    }
    // b-0 runs to the end while a-0 is held and a-1, a-2 wait behind it.
    let b_done = calls.remove(2);
    tokio::time::timeout(BOUND, b_done)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    {
        let log = log.lock().unwrap();
        assert!(log.contains(&"end b-0".to_owned()), "{log:?}");
        assert!(
            !log.iter().any(|e| e.contains("a-1") || e.contains("a-2")),
            "{log:?}"
        );
    }
    open_a0.send(()).unwrap();
    for call in calls {
        tokio::time::timeout(BOUND, call)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
    let log = log.lock().unwrap();
    let a: Vec<&String> = log.iter().filter(|e| e.contains(" a-")).collect();
    assert_eq!(
        a,
        [
            "start a-0",
            "end a-0",
            "start a-1",
            "end a-1",
            "start a-2",
            "end a-2"
        ],
        "one a at a time, in call order"
    );
}

// Paused time on one thread: the virtual sleep below ends only once every
// other task is blocked, so a router that did not wait for the call would
// have finished by then.
#[tokio::test(start_paused = true)]
async fn shutdown_lets_calls_in_progress_finish_and_acknowledges_them() {
    let bus = Arc::new(MemoryBus::new());
    let started = Arc::new(tokio::sync::Notify::new());
    let (release, released) = tokio::sync::watch::channel(false);
    let s = Arc::clone(&started);
    let handler = handler_fn(move |_incoming: Incoming| {
        let (started, mut released) = (Arc::clone(&s), released.clone());
        async move {
            started.notify_one();
            while !*released.borrow() {
                released.changed().await?;
            }
            Ok::<_, BoxError>(Vec::new())
        }
    });
    bus.publish("in", vec![message("k", 0)]).await.unwrap();
    let router = Router::new(bus.clone(), bus.clone()).route(
        "r",
        "in",
        SubscribeOptions::group("g").from_earliest(),
        handler,
    );
    let Running { stop, task } = start(router);
    tokio::time::timeout(BOUND, started.notified())
        .await
        .expect("the handler never started");
    stop.send(()).unwrap();
    // Shutdown waits for the call in progress: every task has run until
    // blocked by the time this virtual sleep ends.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !task.is_finished(),
        "the router stopped before its call finished"
    );
    release.send(true).unwrap();
    tokio::time::timeout(BOUND, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let mut again = bus
        .subscribe("in", SubscribeOptions::group("g"))
        .await
        .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(200), again.next())
            .await
            .is_err(),
        "the finished call's message was not acknowledged"
    );
}

#[tokio::test]
async fn duplicate_route_names_are_refused() {
    let bus = Arc::new(MemoryBus::new());
    let handler = handler_fn(|_: Incoming| async { Ok::<_, BoxError>(Vec::new()) });
    let router = Router::new(bus.clone(), bus.clone())
        .route("same", "a", SubscribeOptions::default(), handler)
        .route("same", "b", SubscribeOptions::default(), handler);
    let error = router.run(async {}).await.unwrap_err();
    assert!(
        matches!(error, RouterError::DuplicateRoute(ref name) if name == "same"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tower_timeout_fails_a_slow_call_and_the_message_comes_again() {
    let bus = Arc::new(MemoryBus::new());
    let mut out = watch(&bus, "done").await;
    let handler = handler_fn(|incoming: Incoming| async move {
        if incoming.attempt == 1 {
            // Never finishes: only the timeout ends it.
            std::future::pending::<()>().await;
        }
        let done = Message::builder("test.Done", "/router")
            .payload("text/plain", format!("attempt {}", incoming.attempt))
            .build()?;
        Ok::<_, BoxError>(vec![Outgoing::new("done", done)])
    });
    let handler = ServiceBuilder::new()
        .map_err(BoxError::from)
        .layer(tower::timeout::TimeoutLayer::new(Duration::from_millis(50)))
        .service(handler);
    bus.publish("in", vec![message("k", 0)]).await.unwrap();
    let router = Router::new(bus.clone(), bus.clone())
        .nack_delay(Duration::from_millis(5))
        .route(
            "r",
            "in",
            SubscribeOptions::group("g").from_earliest(),
            handler,
        );
    let running = start(router);
    let done = take(&mut out, 1).await;
    assert_eq!(
        text(&done[0]),
        "attempt 2",
        "the timed-out first attempt was retried"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tower_concurrency_limit_bounds_calls_in_progress() {
    let bus = Arc::new(MemoryBus::new());
    let mut out = watch(&bus, "done").await;
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (r, m) = (Arc::clone(&running), Arc::clone(&most));
    let handler = handler_fn(move |incoming: Incoming| {
        let (running, most) = (Arc::clone(&r), Arc::clone(&m));
        async move {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            // Let other calls start while this one is in progress.
            for _ in 0..8 {
                tokio::task::yield_now().await;
            }
            running.fetch_sub(1, Ordering::SeqCst);
            Ok::<_, BoxError>(vec![Outgoing::new("done", incoming.message)])
        }
    });
    let handler = ServiceBuilder::new().concurrency_limit(2).service(handler);
    let batch: Vec<Message> = (0..30)
        .map(|n| {
            Message::builder("test.Event", "/router")
                .payload("text/plain", format!("m{n}"))
                .build()
                .unwrap()
        })
        .collect();
    bus.publish("in", batch).await.unwrap();
    let router = Router::new(bus.clone(), bus.clone()).route(
        "r",
        "in",
        SubscribeOptions::group("g")
            .from_earliest()
            .max_in_flight(16),
        handler,
    );
    let running = start(router);
    take(&mut out, 30).await;
    let most = most.load(Ordering::SeqCst);
    assert!(most <= 2, "{most} calls ran at once under a limit of 2");
    assert_eq!(most, 2, "the limit allowed parallel calls");
    running.stop().await;
}
