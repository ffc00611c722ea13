//! Messages queued in an outbox transaction (`SqliteOutbox::queue`) are
//! written with its commit: they exist exactly when it commits, in order,
//! counted in their topic; a topic without room fails the commit and
//! keeps nothing; what does not fit the commit's one step goes as
//! publishes.

mod common;

use common::numbered;
use common::outbox_shop::{Shop, WAIT};
use common::{next_within, number};
use plexus_core::Message;
use plexus_core::bus::{BusError, SubscribeOptions, Subscriber};

/// Places order `n` with `messages` queued to `topic`; commits when
/// `commit`, else drops the transaction.
async fn place(
    shop: &Shop,
    n: i64,
    topic: &str,
    messages: &[Message],
    commit: bool,
) -> Result<(), BusError> {
    let mut tx = shop.outbox.begin(&shop.pool).await.unwrap();
    sqlx::query("INSERT INTO orders (id) VALUES (?1)")
        .bind(n)
        .execute(&mut **tx)
        .await
        .unwrap();
    shop.outbox.queue(&mut tx, topic, messages)?;
    if commit {
        shop.outbox.commit(tx).await
    } else {
        drop(tx);
        Ok(())
    }
}

/// The count of messages `topic` retains.
async fn retained(shop: &Shop, topic: &str) -> Option<i64> {
    sqlx::query_scalar("SELECT retained FROM plexus_topics WHERE name = ?1")
        .bind(topic)
        .fetch_optional(&shop.pool)
        .await
        .unwrap()
}

fn numbers(range: std::ops::Range<usize>) -> Vec<Message> {
    range.map(|n| numbered(n, None)).collect()
}

#[tokio::test]
async fn queued_messages_exist_exactly_when_their_transaction_commits() {
    let mut shop = Shop::open(None).await;
    place(&shop, 1, "orders", &numbers(1..3), true)
        .await
        .unwrap();
    place(&shop, 2, "orders", &numbers(3..5), false)
        .await
        .unwrap();
    place(&shop, 3, "orders", &numbers(5..6), true)
        .await
        .unwrap();
    // The connections go on after a commit in one step: more
    // transactions, on both of the pool's connections, one at a time
    // and two at once.
    for n in 4..10 {
        let number = usize::try_from(n).unwrap() + 2;
        place(&shop, n, "orders", &numbers(number..number + 1), true)
            .await
            .unwrap();
    }
    let (twelve, thirteen) = (numbers(12..13), numbers(13..14));
    let (a, b) = tokio::join!(
        place(&shop, 10, "orders", &twelve, true),
        place(&shop, 11, "orders", &thirteen, true),
    );
    a.unwrap();
    b.unwrap();
    assert_eq!(retained(&shop, "orders").await, Some(11));
    let mut received = shop.receive(11).await;
    // The two at once commit in either order.
    received[9..].sort_unstable();
    assert_eq!(received, [1, 2, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
    assert_eq!(shop.orders().await, [1, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    shop.close().await;
}

#[tokio::test]
async fn a_topic_without_room_fails_the_commit_and_keeps_nothing_of_it() {
    let mut shop = Shop::open(Some(3)).await;
    place(&shop, 1, "orders", &numbers(1..3), true)
        .await
        .unwrap();
    let full = place(&shop, 2, "orders", &numbers(3..5), true).await;
    assert!(matches!(full, Err(BusError::Full { .. })), "{full:?}");
    assert_eq!(shop.orders().await, [1]);
    assert_eq!(retained(&shop, "orders").await, Some(2));
    // Room again once the group acknowledged and retention removed them.
    assert_eq!(shop.receive(2).await, [1, 2]);
    let emptied = tokio::time::timeout(WAIT, async {
        while retained(&shop, "orders").await != Some(0) {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(
        emptied.is_ok(),
        "retention did not remove the acknowledged messages"
    );
    place(&shop, 3, "orders", &numbers(5..7), true)
        .await
        .unwrap();
    assert_eq!(shop.receive(2).await, [5, 6]);
    assert_eq!(shop.orders().await, [1, 3]);
    shop.close().await;
}

#[tokio::test]
async fn a_topic_s_first_messages_more_topics_and_larger_batches_commit_too() {
    let mut shop = Shop::open(None).await;
    let mut audit = shop
        .bus
        .subscribe("audit", SubscribeOptions::group("relay"))
        .await
        .unwrap();
    // "audit" has a group, so it exists; "fresh" does not yet.
    place(&shop, 1, "fresh", &numbers(100..101), true)
        .await
        .unwrap();
    assert_eq!(retained(&shop, "fresh").await, Some(1));
    // Two topics, and more messages than one step writes, in one
    // transaction.
    let mut tx = shop.outbox.begin(&shop.pool).await.unwrap();
    shop.outbox
        .queue(&mut tx, "orders", &numbers(1..11))
        .unwrap();
    shop.outbox
        .queue(&mut tx, "audit", &numbers(50..51))
        .unwrap();
    shop.outbox
        .queue(&mut tx, "orders", &numbers(11..31))
        .unwrap();
    shop.outbox.commit(tx).await.unwrap();
    assert_eq!(shop.receive(30).await, (1..31).collect::<Vec<_>>());
    let delivery = next_within(&mut audit, WAIT).await;
    assert_eq!(number(delivery.message()), 50);
    delivery.ack().await.unwrap();
    shop.close().await;
}

#[tokio::test]
async fn a_queue_is_checked_as_it_is_given_and_bounded() {
    let shop = Shop::open(None).await;
    let mut tx = shop.outbox.begin(&shop.pool).await.unwrap();
    let bad = shop.outbox.queue(&mut tx, "no spaces", &numbers(1..2));
    assert!(matches!(bad, Err(BusError::InvalidTopic { .. })), "{bad:?}");
    let most = shop.bus.config().max_batch_messages;
    shop.outbox
        .queue(&mut tx, "orders", &numbers(0..most))
        .unwrap();
    let over = shop.outbox.queue(&mut tx, "orders", &numbers(0..1));
    assert!(matches!(over, Err(BusError::Full { .. })), "{over:?}");
    // What was queued before the refusal is still written.
    shop.outbox.commit(tx).await.unwrap();
    assert_eq!(
        retained(&shop, "orders").await,
        Some(i64::try_from(most).unwrap())
    );
    shop.close().await;
}
