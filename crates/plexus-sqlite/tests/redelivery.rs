//! Ack deadlines, nacks with and without delay, dropped deliveries, and
//! per-key order across all of them. Real (short) deadlines: the bus
//! stores wall-clock times in the database.

mod common;

use std::time::{Duration, Instant};

use common::{TempDb, next_within, nothing_within, number, numbered};
use plexus_core::bus::{Publisher, SubscribeOptions, Subscriber};

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn an_unanswered_delivery_comes_back_after_its_ack_deadline_and_its_late_ack_is_ignored() {
    let db = TempDb::new();
    let bus = db.open().await;
    let deadline = Duration::from_millis(300);
    let mut subscription = bus
        .subscribe("t", SubscribeOptions::group("g").ack_deadline(deadline))
        .await
        .unwrap();
    bus.publish("t", vec![numbered(1, None)]).await.unwrap();
    let first = next_within(&mut subscription, WAIT).await;
    let delivered = Instant::now();
    assert_eq!(first.attempt(), 1);
    // Held without an answer: it comes back once the deadline passed.
    let again = next_within(&mut subscription, WAIT).await;
    let waited = delivered.elapsed();
    assert!(waited >= deadline - Duration::from_millis(5), "{waited:?}");
    assert_eq!((number(again.message()), again.attempt()), (1, 2));
    first.ack().await.unwrap(); // late: ignored, the message stays out
    // The current delivery is not acked by the late answer: it expires
    // too and comes back a third time.
    let third = next_within(&mut subscription, WAIT).await;
    assert_eq!(third.attempt(), 3);
    drop(again);
    third.ack().await.unwrap();
    nothing_within(&mut subscription, Duration::from_millis(700)).await;
}

#[tokio::test]
async fn an_acked_message_is_never_delivered_again() {
    let db = TempDb::new();
    let bus = db.open().await;
    let mut subscription = bus
        .subscribe(
            "t",
            SubscribeOptions::group("g").ack_deadline(Duration::from_millis(100)),
        )
        .await
        .unwrap();
    bus.publish("t", vec![numbered(1, None), numbered(2, None)])
        .await
        .unwrap();
    let first = next_within(&mut subscription, WAIT).await;
    first.ack().await.unwrap();
    let second = next_within(&mut subscription, WAIT).await;
    assert_eq!(number(second.message()), 2);
    drop(second); // returned at once
    let again = next_within(&mut subscription, WAIT).await;
    assert_eq!((number(again.message()), again.attempt()), (2, 2));
    again.ack().await.unwrap();
    nothing_within(&mut subscription, Duration::from_millis(400)).await;
}

#[tokio::test]
async fn a_nack_with_delay_waits_that_long_and_one_without_comes_back_at_once() {
    let db = TempDb::new();
    let bus = db.open().await;
    let mut subscription = bus
        .subscribe("t", SubscribeOptions::group("g"))
        .await
        .unwrap();
    bus.publish("t", vec![numbered(1, None)]).await.unwrap();
    let delivery = next_within(&mut subscription, WAIT).await;
    let delay = Duration::from_millis(400);
    let nacked = Instant::now();
    delivery.nack(delay).await.unwrap();
    let again = next_within(&mut subscription, WAIT).await;
    let waited = nacked.elapsed();
    assert!(
        waited >= delay - Duration::from_millis(5),
        "redelivered after {waited:?}"
    );
    assert_eq!(again.attempt(), 2);
    let nacked = Instant::now();
    again.nack(Duration::ZERO).await.unwrap();
    let third = next_within(&mut subscription, WAIT).await;
    assert!(
        nacked.elapsed() < Duration::from_secs(2),
        "{:?}",
        nacked.elapsed()
    );
    assert_eq!(third.attempt(), 3);
    third.ack().await.unwrap();
}

#[tokio::test]
async fn a_key_keeps_its_order_across_nacks_and_deadlines_while_other_keys_go() {
    let db = TempDb::new();
    let bus = db.open().await;
    let mut one = bus
        .subscribe(
            "t",
            SubscribeOptions::group("g").ack_deadline(Duration::from_millis(300)),
        )
        .await
        .unwrap();
    let mut two = bus
        .subscribe("t", SubscribeOptions::group("g"))
        .await
        .unwrap();
    bus.publish(
        "t",
        vec![
            numbered(0, Some("a")),
            numbered(1, Some("a")),
            numbered(2, Some("b")),
            numbered(3, Some("a")),
            numbered(4, None),
        ],
    )
    .await
    .unwrap();
    // `one` gets a0 (first), then b2 and 4 go while a1 waits.
    let a0 = next_within(&mut one, WAIT).await;
    assert_eq!(number(a0.message()), 0);
    let b2 = next_within(&mut one, WAIT).await;
    assert_eq!(number(b2.message()), 2);
    let four = next_within(&mut one, WAIT).await;
    assert_eq!(number(four.message()), 4);
    nothing_within(&mut two, Duration::from_millis(150)).await;
    b2.ack().await.unwrap();
    four.ack().await.unwrap();

    // Nacked: a0 comes back before a1, to any member.
    a0.nack(Duration::from_millis(50)).await.unwrap();
    let a0 = tokio::select! {
        d = next_within(&mut one, WAIT) => d,
        d = next_within(&mut two, WAIT) => d,
    };
    assert_eq!((number(a0.message()), a0.attempt()), (0, 2));
    // Unanswered past the deadline (if `one` took it) or dropped: it comes
    // back again, still before a1.
    drop(a0);
    let a0 = tokio::select! {
        d = next_within(&mut one, WAIT) => d,
        d = next_within(&mut two, WAIT) => d,
    };
    assert_eq!((number(a0.message()), a0.attempt()), (0, 3));
    a0.ack().await.unwrap();
    for expected in [1, 3] {
        let next = tokio::select! {
            d = next_within(&mut one, WAIT) => d,
            d = next_within(&mut two, WAIT) => d,
        };
        assert_eq!(number(next.message()), expected);
        next.ack().await.unwrap();
    }
}

#[tokio::test]
async fn many_keys_stay_in_order_under_random_nacks() {
    let db = TempDb::new();
    let bus = db.open().await;
    let mut members = Vec::new();
    for _ in 0..3 {
        members.push(
            bus.subscribe("t", SubscribeOptions::group("g").max_in_flight(8))
                .await
                .unwrap(),
        );
    }
    let keys = ["k0", "k1", "k2", "k3", "k4"];
    let batch: Vec<_> = (0..300)
        .map(|n| numbered(n, Some(keys[n % keys.len()])))
        .collect();
    bus.publish("t", batch).await.unwrap();
    let mut next_of_key = vec![0usize; keys.len()];
    let mut acked = 0;
    let mut turn = 0u64;
    let (sender, mut receiver) = tokio::sync::mpsc::channel(64);
    for mut member in members {
        let sender = sender.clone();
        tokio::spawn(async move {
            use futures::StreamExt;
            while let Some(Ok(delivery)) = member.next().await {
                if sender.send(delivery).await.is_err() {
                    break;
                }
            }
        });
    }
    drop(sender);
    while acked < 300 {
        let delivery = tokio::time::timeout(WAIT, receiver.recv())
            .await
            .expect("deliveries keep coming")
            .expect("members run");
        let n = number(delivery.message());
        let key = n % keys.len();
        assert_eq!(
            n,
            next_of_key[key] * keys.len() + key,
            "key {} out of order",
            keys[key]
        );
        turn += 1;
        if turn.is_multiple_of(3) {
            delivery.nack(Duration::ZERO).await.unwrap();
        } else {
            delivery.ack().await.unwrap();
            next_of_key[key] += 1;
            acked += 1;
        }
    }
}

#[tokio::test]
async fn acks_of_many_groups_at_once_remove_their_current_leases_only() {
    let db = TempDb::new();
    let bus = db.open().await;
    // Six groups answer together (more than one ack statement per group
    // is worth): five ack everything; the sixth acks a delivery whose
    // deadline passed and which went out again (attempt 2): stale,
    // ignored. The sixth reads a topic of its own whose messages share a
    // key, so the message after the expired one waits for it.
    let deadline = Duration::from_millis(300);
    let mut groups = Vec::new();
    for g in 0..6 {
        let (topic, options) = if g == 5 {
            ("keyed", SubscribeOptions::group("g5"))
        } else {
            (
                "t",
                SubscribeOptions::group(format!("g{g}")).max_in_flight(10),
            )
        };
        let options = options.ack_deadline(deadline);
        groups.push(bus.subscribe(topic, options).await.unwrap());
    }
    bus.publish("t", (0..10).map(|n| numbered(n, None)).collect())
        .await
        .unwrap();
    bus.publish("keyed", (0..10).map(|n| numbered(n, Some("k"))).collect())
        .await
        .unwrap();
    let mut answers = Vec::new();
    for subscription in &mut groups[..5] {
        for _ in 0..10 {
            answers.push(next_within(subscription, WAIT).await);
        }
    }
    let stale = next_within(&mut groups[5], WAIT).await;
    assert_eq!((number(stale.message()), stale.attempt()), (0, 1));
    let again = next_within(&mut groups[5], WAIT).await;
    assert_eq!((number(again.message()), again.attempt()), (0, 2));
    answers.push(stale);
    futures::future::try_join_all(answers.into_iter().map(|d| d.ack()))
        .await
        .unwrap();
    // Only the sixth group's redelivered message is still out (its other
    // nine wait behind it, never delivered).
    let out = common::scalar(
        &db.path,
        "SELECT count(*) FROM plexus_pending WHERE attempt > 0",
    )
    .await;
    assert_eq!(out, 1);
    again.ack().await.unwrap();
    for n in 1..10 {
        let delivery = next_within(&mut groups[5], WAIT).await;
        assert_eq!((number(delivery.message()), delivery.attempt()), (n, 1));
        delivery.ack().await.unwrap();
    }
    let pending = common::scalar(&db.path, "SELECT count(*) FROM plexus_pending").await;
    assert_eq!(pending, 0);
    for subscription in &mut groups {
        nothing_within(subscription, Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_late_ack_of_a_keyed_message_does_not_free_the_next_of_its_key() {
    let db = TempDb::new();
    let bus = db.open().await;
    let deadline = Duration::from_millis(300);
    let mut subscription = bus
        .subscribe("t", SubscribeOptions::group("g").ack_deadline(deadline))
        .await
        .unwrap();
    bus.publish("t", vec![numbered(0, Some("k")), numbered(1, Some("k"))])
        .await
        .unwrap();
    let first = next_within(&mut subscription, WAIT).await;
    assert_eq!((number(first.message()), first.attempt()), (0, 1));
    // Past its deadline k0 goes out again, still ahead of k1.
    let again = next_within(&mut subscription, WAIT).await;
    assert_eq!((number(again.message()), again.attempt()), (0, 2));
    first.ack().await.unwrap(); // stale: k0 is still out, k1 keeps waiting
    nothing_within(&mut subscription, Duration::from_millis(150)).await;
    again.ack().await.unwrap();
    let next = next_within(&mut subscription, WAIT).await;
    assert_eq!((number(next.message()), next.attempt()), (1, 1));
    next.ack().await.unwrap();
    let pending = common::scalar(&db.path, "SELECT count(*) FROM plexus_pending").await;
    assert_eq!(pending, 0);
}
