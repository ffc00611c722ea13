//! Messages without a key that one claim leased together share one row
//! (a run): acks, nacks, expired leases, a closing bus and a second bus
//! instance on the same file each treat them one by one all the same.

mod common;

use std::time::Duration;

use common::{TempDb, next_within, nothing_within, number, numbered, scalar};
use plexus_core::bus::{Delivery, Publisher, SubscribeOptions, Subscriber, Subscription};
use plexus_sqlite::SqliteBus;

const WAIT: Duration = Duration::from_secs(10);
/// Unacknowledged messages of every group: pending rows and runs' ones.
const OUTSTANDING: &str = "SELECT (SELECT count(*) FROM plexus_pending)
    + (SELECT coalesce(sum(remaining), 0) FROM plexus_runs)";

/// A bus on `db` whose member (of group `g`, subscribed with `options`)
/// holds messages 0 to 9, leased as one run.
async fn holding_ten(
    db: &TempDb,
    options: SubscribeOptions,
) -> (SqliteBus, Subscription, Vec<Delivery>) {
    let bus = db.open().await;
    let mut member = bus.subscribe("t", options).await.unwrap();
    bus.publish("t", (0..10).map(|n| numbered(n, None)).collect())
        .await
        .unwrap();
    let taken = take(&mut member, 10).await;
    (bus, member, taken)
}

async fn take(subscription: &mut Subscription, n: usize) -> Vec<Delivery> {
    let mut taken = Vec::new();
    for _ in 0..n {
        taken.push(next_within(subscription, WAIT).await);
    }
    taken
}

#[tokio::test]
async fn a_run_is_one_row_and_goes_with_its_last_ack_in_any_order() {
    let db = TempDb::new();
    let options = SubscribeOptions::group("g").max_in_flight(100);
    let (_bus, mut member, mut taken) = holding_ten(&db, options).await;
    assert_eq!(
        scalar(&db.path, "SELECT count(*) FROM plexus_runs").await,
        1
    );
    assert_eq!(
        scalar(&db.path, "SELECT count(*) FROM plexus_pending").await,
        0
    );
    // Out of order: the last, then the first two; the run keeps the rest.
    taken.pop().unwrap().ack().await.unwrap();
    for delivery in taken.drain(..2) {
        delivery.ack().await.unwrap();
    }
    assert_eq!(scalar(&db.path, OUTSTANDING).await, 7);
    let low = "SELECT low_seq - first_seq FROM plexus_runs";
    assert_eq!(scalar(&db.path, low).await, 2, "the first unacknowledged");
    for delivery in taken {
        delivery.ack().await.unwrap();
    }
    assert_eq!(
        scalar(&db.path, "SELECT count(*) FROM plexus_runs").await,
        0
    );
    nothing_within(&mut member, Duration::from_millis(200)).await;
}

#[tokio::test]
async fn a_nacked_message_of_a_run_comes_back_alone() {
    let db = TempDb::new();
    let options = SubscribeOptions::group("g").max_in_flight(100);
    let (_bus, mut member, mut taken) = holding_ten(&db, options).await;
    let nacked = taken.remove(3);
    taken.pop().unwrap().ack().await.unwrap();
    nacked.nack(Duration::ZERO).await.unwrap();
    // The run became pending rows: the nacked one free, the others still
    // leased.
    assert_eq!(
        scalar(&db.path, "SELECT count(*) FROM plexus_runs").await,
        0
    );
    assert_eq!(scalar(&db.path, OUTSTANDING).await, 9);
    let again = next_within(&mut member, WAIT).await;
    assert_eq!((number(again.message()), again.attempt()), (3, 2));
    for delivery in taken {
        delivery.ack().await.unwrap();
    }
    again.ack().await.unwrap();
    assert_eq!(scalar(&db.path, OUTSTANDING).await, 0);
    nothing_within(&mut member, Duration::from_millis(200)).await;
}

#[tokio::test]
async fn an_expired_run_comes_back_without_its_acknowledged_messages() {
    let db = TempDb::new();
    let deadline = Duration::from_millis(300);
    let options = SubscribeOptions::group("g")
        .max_in_flight(100)
        .ack_deadline(deadline);
    let (_bus, mut member, mut taken) = holding_ten(&db, options).await;
    // 0, 1 and 5 acknowledged; the other seven come back past the deadline.
    for i in [5, 1, 0] {
        taken.remove(i).ack().await.unwrap();
    }
    let again = take(&mut member, 7).await;
    let numbers: Vec<(usize, u32)> = again
        .iter()
        .map(|d| (number(d.message()), d.attempt()))
        .collect();
    assert_eq!(
        numbers,
        [2, 3, 4, 6, 7, 8, 9].map(|n| (n, 2)),
        "the unacknowledged ones, in order, at their second attempt"
    );
    // The late acks of the first deliveries are stale.
    for delivery in taken {
        delivery.ack().await.unwrap();
    }
    assert_eq!(scalar(&db.path, OUTSTANDING).await, 7);
    for delivery in again {
        delivery.ack().await.unwrap();
    }
    assert_eq!(scalar(&db.path, OUTSTANDING).await, 0);
    nothing_within(&mut member, deadline * 2).await;
}

#[tokio::test]
async fn acks_count_after_another_bus_instance_took_back_part_of_the_run() {
    let db = TempDb::new();
    let deadline = Duration::from_millis(300);
    let options = |max| {
        SubscribeOptions::group("g")
            .max_in_flight(max)
            .ack_deadline(deadline)
    };
    let (_first, mut slow, held) = holding_ten(&db, options(10)).await;
    let second = db.open().await;
    // Past the deadline the other instance takes three back (exploding
    // the run); the first still holds all ten and acks them late.
    let mut other = second.subscribe("t", options(3)).await.unwrap();
    let retaken = take(&mut other, 3).await;
    let numbers: Vec<(usize, u32)> = retaken
        .iter()
        .map(|d| (number(d.message()), d.attempt()))
        .collect();
    assert_eq!(numbers, [(0, 2), (1, 2), (2, 2)]);
    // Last first: the first ack finds the run gone.
    for delivery in held.into_iter().rev() {
        delivery.ack().await.unwrap();
    }
    // The seven the other instance did not take were acknowledged; the
    // three it holds are still out with it.
    assert_eq!(scalar(&db.path, OUTSTANDING).await, 3);
    for delivery in retaken {
        delivery.ack().await.unwrap();
    }
    assert_eq!(scalar(&db.path, OUTSTANDING).await, 0);
    nothing_within(&mut other, deadline * 2).await;
    nothing_within(&mut slow, Duration::from_millis(50)).await;
}

#[tokio::test]
async fn closing_the_bus_returns_its_runs_at_once() {
    let db = TempDb::new();
    let options = SubscribeOptions::group("g")
        .max_in_flight(100)
        .ack_deadline(Duration::from_secs(60));
    let (closing, leaving, mut held) = holding_ten(&db, options.clone()).await;
    let staying = db.open().await;
    held.remove(0).ack().await.unwrap();
    // Closed while its member still holds nine: the close returns them.
    Subscriber::close(&closing).await.unwrap();
    let mut member = staying.subscribe("t", options).await.unwrap();
    let numbers: Vec<usize> = take(&mut member, 9)
        .await
        .iter()
        .map(|d| number(d.message()))
        .collect();
    assert_eq!(
        numbers,
        (1..10).collect::<Vec<_>>(),
        "long before the deadline"
    );
    drop((held, leaving));
}
