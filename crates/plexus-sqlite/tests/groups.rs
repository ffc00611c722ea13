//! Consumer groups: each group gets every message, members of a group
//! share them, where a new group starts, private groups.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{TempDb, next_within, nothing_within, number, numbered, wait_for_scalar};
use plexus_core::bus::{Publisher, SubscribeOptions, Subscriber};

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn each_group_gets_every_message_and_members_share_them() {
    let db = TempDb::new();
    let bus = db.open().await;
    let mut a1 = bus
        .subscribe("t", SubscribeOptions::group("a"))
        .await
        .unwrap();
    let mut a2 = bus
        .subscribe("t", SubscribeOptions::group("a"))
        .await
        .unwrap();
    let mut b = bus
        .subscribe("t", SubscribeOptions::group("b"))
        .await
        .unwrap();
    bus.publish("t", (0..200).map(|n| numbered(n, None)).collect())
        .await
        .unwrap();

    let mut seen_b = HashSet::new();
    for _ in 0..200 {
        let delivery = next_within(&mut b, WAIT).await;
        assert!(seen_b.insert(number(delivery.message())), "once per group");
        delivery.ack().await.unwrap();
    }
    assert_eq!(seen_b.len(), 200);

    let mut seen_a = HashSet::new();
    let (mut from_a1, mut from_a2) = (0, 0);
    while seen_a.len() < 200 {
        let delivery = tokio::select! {
            d = next_within(&mut a1, WAIT) => { from_a1 += 1; d }
            d = next_within(&mut a2, WAIT) => { from_a2 += 1; d }
        };
        assert_eq!(delivery.attempt(), 1);
        assert!(
            seen_a.insert(number(delivery.message())),
            "each message to one member"
        );
        delivery.ack().await.unwrap();
    }
    assert!(
        from_a1 > 0 && from_a2 > 0,
        "both members took a share: {from_a1} / {from_a2}"
    );
    nothing_within(&mut a1, Duration::from_millis(200)).await;
    nothing_within(&mut a2, Duration::from_millis(50)).await;
}

#[tokio::test]
async fn a_new_group_starts_at_new_messages_or_at_the_earliest() {
    let db = TempDb::new();
    let bus = db.open().await;
    bus.publish("t", (0..5).map(|n| numbered(n, None)).collect())
        .await
        .unwrap();
    let mut new = bus
        .subscribe("t", SubscribeOptions::group("new"))
        .await
        .unwrap();
    let mut earliest = bus
        .subscribe("t", SubscribeOptions::group("old").from_earliest())
        .await
        .unwrap();
    bus.publish("t", vec![numbered(5, None)]).await.unwrap();

    let delivery = next_within(&mut new, WAIT).await;
    assert_eq!(
        number(delivery.message()),
        5,
        "only what came after the group"
    );
    delivery.ack().await.unwrap();
    for n in 0..6 {
        let delivery = next_within(&mut earliest, WAIT).await;
        assert_eq!(number(delivery.message()), n);
        delivery.ack().await.unwrap();
    }

    // An existing group continues where it is, whatever `start` says.
    drop(earliest);
    bus.publish("t", vec![numbered(6, None)]).await.unwrap();
    let mut again = bus
        .subscribe("t", SubscribeOptions::group("old").from_earliest())
        .await
        .unwrap();
    let delivery = next_within(&mut again, WAIT).await;
    assert_eq!(number(delivery.message()), 6);
}

#[tokio::test]
async fn subscriptions_without_a_group_each_get_everything_and_their_group_goes_with_them() {
    let db = TempDb::new();
    let bus = db.open().await;
    let mut one = bus
        .subscribe("t", SubscribeOptions::default())
        .await
        .unwrap();
    let mut two = bus
        .subscribe("t", SubscribeOptions::default())
        .await
        .unwrap();
    let private = "SELECT count(*) FROM plexus_groups WHERE private";
    wait_for_scalar(&db.path, private, 2, WAIT).await;
    bus.publish("t", (0..3).map(|n| numbered(n, None)).collect())
        .await
        .unwrap();
    for subscription in [&mut one, &mut two] {
        for n in 0..3 {
            let delivery = next_within(subscription, WAIT).await;
            assert_eq!(number(delivery.message()), n);
            delivery.ack().await.unwrap();
        }
    }
    drop(one);
    wait_for_scalar(&db.path, private, 1, WAIT).await;
    drop(two);
    wait_for_scalar(&db.path, private, 0, WAIT).await;
}

#[tokio::test]
async fn topics_do_not_leak_into_each_other() {
    let db = TempDb::new();
    let bus = db.open().await;
    let mut left = bus
        .subscribe("left", SubscribeOptions::group("g"))
        .await
        .unwrap();
    let mut right = bus
        .subscribe("right", SubscribeOptions::group("g"))
        .await
        .unwrap();
    bus.publish("left", vec![numbered(1, None)]).await.unwrap();
    bus.publish("right", vec![numbered(2, None)]).await.unwrap();
    let delivery = next_within(&mut left, WAIT).await;
    assert_eq!(number(delivery.message()), 1);
    delivery.ack().await.unwrap();
    let delivery = next_within(&mut right, WAIT).await;
    assert_eq!(number(delivery.message()), 2);
    delivery.ack().await.unwrap();
    nothing_within(&mut left, Duration::from_millis(200)).await;
}

#[tokio::test]
async fn max_in_flight_holds_the_stream_until_an_answer() {
    let db = TempDb::new();
    let bus = db.open().await;
    let mut subscription = bus
        .subscribe("t", SubscribeOptions::group("g").max_in_flight(2))
        .await
        .unwrap();
    bus.publish("t", (0..3).map(|n| numbered(n, None)).collect())
        .await
        .unwrap();
    let first = next_within(&mut subscription, WAIT).await;
    let second = next_within(&mut subscription, WAIT).await;
    nothing_within(&mut subscription, Duration::from_millis(300)).await;
    first.ack().await.unwrap();
    let third = next_within(&mut subscription, WAIT).await;
    assert_eq!(number(third.message()), 2);
    drop(second);
}

#[tokio::test]
async fn messages_every_group_acknowledged_are_deleted() {
    let db = TempDb::new();
    let mut config = db.config();
    config.retention_interval = Duration::from_millis(20);
    config.retention_batch = 7;
    let bus = db.open_with(config).await;
    let mut a = bus
        .subscribe("t", SubscribeOptions::group("a").max_in_flight(100))
        .await
        .unwrap();
    let mut b = bus
        .subscribe("t", SubscribeOptions::group("b").max_in_flight(100))
        .await
        .unwrap();
    bus.publish("t", (0..50).map(|n| numbered(n, None)).collect())
        .await
        .unwrap();
    let count = "SELECT count(*) FROM plexus_messages";
    for _ in 0..50 {
        next_within(&mut a, WAIT).await.ack().await.unwrap();
    }
    // Group b has acknowledged nothing yet: everything is kept.
    for _ in 0..30 {
        next_within(&mut b, WAIT).await.ack().await.unwrap();
    }
    wait_for_scalar(&db.path, count, 20, WAIT).await;
    for _ in 30..50 {
        next_within(&mut b, WAIT).await.ack().await.unwrap();
    }
    wait_for_scalar(&db.path, count, 0, WAIT).await;
    wait_for_scalar(&db.path, "SELECT sum(retained) FROM plexus_topics", 0, WAIT).await;
}

#[tokio::test]
async fn a_topic_without_groups_keeps_a_window_of_its_latest_messages() {
    let db = TempDb::new();
    let mut config = db.config();
    config.retention_interval = Duration::from_millis(20);
    config.retain_without_groups = 10;
    let bus = db.open_with(config).await;
    bus.publish("t", (0..35).map(|n| numbered(n, None)).collect())
        .await
        .unwrap();
    wait_for_scalar(&db.path, "SELECT count(*) FROM plexus_messages", 10, WAIT).await;
    let mut late = bus
        .subscribe("t", SubscribeOptions::group("late").from_earliest())
        .await
        .unwrap();
    for n in 25..35 {
        let delivery = next_within(&mut late, WAIT).await;
        assert_eq!(number(delivery.message()), n);
        delivery.ack().await.unwrap();
    }
}

#[tokio::test]
async fn a_full_topic_refuses_a_batch_until_its_groups_catch_up() {
    let db = TempDb::new();
    let mut config = db.config();
    config.topic_capacity = 10;
    config.retention_interval = Duration::from_millis(20);
    let bus = db.open_with(config).await;
    let mut g = bus
        .subscribe("t", SubscribeOptions::group("g"))
        .await
        .unwrap();
    bus.publish("t", (0..8).map(|n| numbered(n, None)).collect())
        .await
        .unwrap();
    let error = bus
        .publish("t", (8..11).map(|n| numbered(n, None)).collect())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("topic_capacity"), "{error}");
    for n in 0..8 {
        let delivery = next_within(&mut g, WAIT).await;
        assert_eq!(number(delivery.message()), n);
        delivery.ack().await.unwrap();
    }
    wait_for_scalar(&db.path, "SELECT retained FROM plexus_topics", 0, WAIT).await;
    bus.publish("t", (8..11).map(|n| numbered(n, None)).collect())
        .await
        .unwrap();
    let delivery = next_within(&mut g, WAIT).await;
    assert_eq!(
        number(delivery.message()),
        8,
        "the refused batch left nothing behind"
    );
}

#[tokio::test]
async fn concurrent_batches_are_accepted_only_while_they_fit() {
    let db = TempDb::new();
    let mut config = db.config();
    config.topic_capacity = 10;
    let bus = db.open_with(config).await;
    let mut g = bus
        .subscribe("t", SubscribeOptions::group("g").max_in_flight(100))
        .await
        .unwrap();
    // Five batches of 3 at once (the writer commits them together or
    // not): three fit in 10, two are refused whole.
    let results = futures::future::join_all((0..5).map(|b| {
        let bus = bus.clone();
        async move {
            bus.publish("t", (0..3).map(|i| numbered(b * 3 + i, None)).collect())
                .await
        }
    }))
    .await;
    let accepted: HashSet<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.is_ok())
        .flat_map(|(b, _)| (0..3).map(move |i| b * 3 + i))
        .collect();
    assert_eq!(accepted.len(), 9, "{results:?}");
    for result in results.iter().filter(|r| r.is_err()) {
        let error = result.as_ref().unwrap_err().to_string();
        assert!(error.contains("topic_capacity"), "{error}");
    }
    let mut delivered = HashSet::new();
    for _ in 0..9 {
        let delivery = next_within(&mut g, WAIT).await;
        delivered.insert(number(delivery.message()));
        delivery.ack().await.unwrap();
    }
    assert_eq!(
        delivered, accepted,
        "exactly the accepted batches are stored"
    );
    nothing_within(&mut g, Duration::from_millis(200)).await;
}

#[tokio::test]
async fn a_member_dropped_while_waiting_takes_nothing_with_it() {
    let db = TempDb::new();
    let bus = db.open().await;
    let mut gone = bus
        .subscribe("t", SubscribeOptions::group("g"))
        .await
        .unwrap();
    let mut stays = bus
        .subscribe("t", SubscribeOptions::group("g"))
        .await
        .unwrap();
    // `gone` waits for a message (its claim waits at the writer), then is
    // dropped; what is published next goes to `stays` at once, not after
    // an ack deadline (30 s by default).
    nothing_within(&mut gone, Duration::from_millis(100)).await;
    drop(gone);
    for n in 0..3 {
        bus.publish("t", vec![numbered(n, None)]).await.unwrap();
        let delivery = next_within(&mut stays, Duration::from_secs(2)).await;
        assert_eq!((number(delivery.message()), delivery.attempt()), (n, 1));
        delivery.ack().await.unwrap();
    }
}

#[tokio::test]
async fn a_group_takes_no_more_than_its_window_ahead_of_its_acks() {
    let db = TempDb::new();
    let mut config = db.config();
    config.group_window = 20;
    let bus = db.open_with(config).await;
    let mut member = bus
        .subscribe("t", SubscribeOptions::group("g").max_in_flight(100))
        .await
        .unwrap();
    bus.publish("t", (0..100).map(|n| numbered(n, None)).collect())
        .await
        .unwrap();
    let mut held = Vec::new();
    for n in 0..20 {
        let delivery = next_within(&mut member, WAIT).await;
        assert_eq!(number(delivery.message()), n, "in order");
        held.push(delivery);
    }
    nothing_within(&mut member, Duration::from_millis(300)).await;
    let pending = "SELECT (SELECT count(*) FROM plexus_pending)
        + (SELECT coalesce(sum(remaining), 0) FROM plexus_runs)";
    assert_eq!(common::scalar(&db.path, pending).await, 20, "the window");
    for delivery in held.drain(..5) {
        delivery.ack().await.unwrap();
    }
    for n in 20..25 {
        let delivery = next_within(&mut member, WAIT).await;
        assert_eq!(number(delivery.message()), n, "room for five more");
        held.push(delivery);
    }
    nothing_within(&mut member, Duration::from_millis(300)).await;
    assert_eq!(
        common::scalar(&db.path, pending).await,
        20,
        "still the window"
    );
}
