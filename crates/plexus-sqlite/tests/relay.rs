//! The outbox relayed: a Forwarder takes what committed transactions
//! appended on the SQLite bus to another bus, in commit order, and
//! nothing of a rolled-back one.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{TempDb, next_within, number, numbered, place, service_pool};
use futures::StreamExt as _;
use plexus_bus::forward::Forwarder;
use plexus_bus::memory::MemoryBus;
use plexus_core::bus::{Publisher, SubscribeOptions, Subscriber};
use plexus_sqlite::SqliteOutbox;
use tokio::sync::oneshot;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn committed_outbox_messages_reach_the_destination_in_commit_order() {
    let db = TempDb::new();
    let mut config = db.config();
    config.poll_interval = Duration::from_millis(10);
    let source = db.open_with(config.clone()).await;
    let destination = MemoryBus::new();
    let mut out = destination
        .subscribe("orders", SubscribeOptions::group("audit"))
        .await
        .unwrap();
    let pool = service_pool(&config).await;
    let outbox = SqliteOutbox::new(&config);
    // Written before the relay first runs: relayed too.
    for (n, commit) in [(1, true), (2, false), (3, true)] {
        place(&pool, &outbox, n, commit).await;
    }
    let (stop, stopped) = oneshot::channel::<()>();
    let relay = Forwarder::new(
        Arc::new(source.clone()),
        "orders",
        "relay",
        Arc::new(destination.clone()),
        "orders",
    );
    let task = tokio::spawn(relay.run(async move {
        let _ = stopped.await;
    }));
    for n in 4..=6 {
        place(&pool, &outbox, n, true).await;
    }
    let mut received = Vec::new();
    for _ in 0..5 {
        let delivery = next_within(&mut out, WAIT).await;
        received.push(number(delivery.message()));
        delivery.ack().await.unwrap();
    }
    assert_eq!(received, [1, 3, 4, 5, 6]);
    stop.send(()).unwrap();
    assert_eq!(task.await.unwrap().unwrap().messages, 5);
    Publisher::close(&source).await.unwrap();
}

/// With the poll interval far longer than the test waits, only the wake
/// of [`SqliteOutbox::commit`] brings the message to a member waiting at
/// the bus in time.
#[tokio::test]
async fn an_outbox_for_the_bus_wakes_its_subscriptions_at_commit() {
    let db = TempDb::new();
    let mut config = db.config();
    config.poll_interval = Duration::from_secs(600);
    let bus = db.open_with(config.clone()).await;
    let mut relay = bus
        .subscribe("orders", SubscribeOptions::group("relay"))
        .await
        .unwrap();
    let pool = service_pool(&config).await;
    let outbox = SqliteOutbox::for_bus(&bus);
    for n in 1..=3 {
        // The member asks for a message and finds none: its claim waits
        // at the bus. The bus answers commands in order, so once a publish
        // to another topic returns, that claim has been taken.
        let mut next = relay.next();
        assert!(futures::poll!(&mut next).is_pending());
        bus.publish("elsewhere", vec![numbered(0, None)])
            .await
            .unwrap();
        let mut tx = outbox.begin(&pool).await.unwrap();
        outbox
            .publish(&mut tx, "orders", &[numbered(n, None)])
            .await
            .unwrap();
        outbox.commit(tx).await.unwrap();
        let delivery = tokio::time::timeout(WAIT, next)
            .await
            .expect("the waiting member woken at commit")
            .expect("the subscription goes on")
            .unwrap();
        assert_eq!(number(delivery.message()), n);
        delivery.ack().await.unwrap();
    }
    Publisher::close(&bus).await.unwrap();
}

/// An outbox transaction begun through the outbox of a bus takes its turn
/// among the bus's writes: the bus's next write waits for it to end on
/// the turns' queue, not in SQLite's busy handler, and goes on when it
/// commits. The bus's busy timeout is 1 ms, far shorter than the wait:
/// a write that met the open transaction in the busy handler would fail.
#[tokio::test]
async fn an_outbox_transaction_and_the_bus_take_turns() {
    let db = TempDb::new();
    let mut config = db.config();
    config.busy_timeout = Duration::from_millis(1);
    let bus = db.open_with(config.clone()).await;
    let pool = service_pool(&config).await;
    let outbox = SqliteOutbox::for_bus(&bus);
    let mut tx = outbox.begin(&pool).await.unwrap();
    outbox
        .publish(&mut tx, "orders", &[numbered(1, None)])
        .await
        .unwrap();
    let mut publishing = {
        let bus = bus.clone();
        tokio::spawn(async move { bus.publish("elsewhere", vec![numbered(2, None)]).await })
    };
    let early = tokio::time::timeout(Duration::from_millis(200), &mut publishing).await;
    assert!(
        early.is_err(),
        "the bus wrote while the outbox transaction was open"
    );
    outbox.commit(tx).await.unwrap();
    tokio::time::timeout(WAIT, publishing)
        .await
        .expect("the bus's write goes on once the transaction ended")
        .unwrap()
        .unwrap();
    Publisher::close(&bus).await.unwrap();
}
