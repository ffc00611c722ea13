//! notifications: every group gets every OrderPlaced once; the members of
//! the email group share them.

mod common;

use std::sync::Arc;
use std::time::Duration;

use plexus_bus::memory::MemoryBus;
use plexus_core::bus::Publisher;
use shop::notifications::{GROUPS, NotificationsConfig};
use shop::orders::{ORDER_PLACED_TOPIC, OrderPlaced};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_group_gets_every_event_once_and_email_members_share_them() {
    let bus = MemoryBus::new();
    let notifications = shop::notifications::start(
        Arc::new(bus.clone()),
        Arc::new(bus.clone()),
        NotificationsConfig::default(),
    );
    let events = common::order_events(300);
    bus.publish(ORDER_PLACED_TOPIC, events).await.unwrap();
    let metrics = Arc::clone(notifications.metrics());
    tokio::time::timeout(Duration::from_secs(20), async {
        while GROUPS.iter().any(|(g, _)| metrics.distinct(g) < 300) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        let got: Vec<(&str, usize)> = GROUPS
            .iter()
            .map(|(g, _)| (*g, metrics.distinct(g)))
            .collect();
        panic!("not every group handled 300 events: {got:?}")
    });
    notifications.shutdown().await.unwrap();
    for (group, members) in GROUPS {
        let receipts = metrics.group(group);
        assert_eq!(receipts.orders.len(), 300, "{group}");
        assert!(
            receipts.orders.values().all(|n| *n == 1),
            "{group}: an event handled twice"
        );
        assert_eq!(
            receipts.per_member.len(),
            members,
            "{group}: {:?}",
            receipts.per_member
        );
        assert!(
            receipts.per_member.values().all(|n| *n > 0),
            "{group}: a member got nothing: {:?}",
            receipts.per_member
        );
    }
}

#[test]
fn order_placed_round_trips_through_a_message() {
    let event = OrderPlaced {
        order_id: "ord-7".to_owned(),
        customer_id: "cus-2".to_owned(),
        total_cents: 1234,
    };
    let message = event.to_message().unwrap();
    assert_eq!(message.key(), Some("ord-7"));
    assert_eq!(message.subject(), Some("ord-7"));
    assert_eq!(message.ty(), shop::orders::ORDER_PLACED_TYPE);
    assert_eq!(OrderPlaced::from_message(&message).unwrap(), event);
}
