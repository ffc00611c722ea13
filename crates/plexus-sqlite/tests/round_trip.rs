//! Every attribute of a message comes back exactly as published; bad
//! input is refused with errors that name the problem.

mod common;

use std::time::{Duration, UNIX_EPOCH};

use common::{TempDb, next_within, numbered};
use plexus_core::bus::{BusError, Publisher, SubscribeOptions, Subscriber};
use plexus_core::{Message, MessageParts};
use plexus_sqlite::SqliteBus;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn every_attribute_round_trips_exactly() {
    round_trip(None).await;
}

/// The same with the writer's cache off: every delivery is read back from
/// the database.
#[tokio::test]
async fn every_attribute_round_trips_exactly_through_the_database() {
    round_trip(Some(0)).await;
}

async fn round_trip(cache_bytes: Option<usize>) {
    let db = TempDb::new();
    let mut config = db.config();
    if let Some(bytes) = cache_bytes {
        config.cache_bytes = bytes;
    }
    let bus = db.open_with(config).await;
    let mut subscription = bus
        .subscribe("attrs", SubscribeOptions::group("g"))
        .await
        .unwrap();
    let mut headers = std::collections::BTreeMap::new();
    headers.insert(
        "traceparent".to_owned(),
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned(),
    );
    headers.insert("x-empty".to_owned(), String::new());
    headers.insert("x-unicode".to_owned(), "grüße \"quoted\" {json}".to_owned());
    let full = Message::from_parts(MessageParts {
        id: "order-42-placed".to_owned(),
        source: "/shop/orders".to_owned(),
        ty: "shop.order.placed".to_owned(),
        subject: Some("order-42".to_owned()),
        time: UNIX_EPOCH + Duration::new(1_790_000_000, 123_456_789),
        data_content_type: Some("application/octet-stream".to_owned()),
        key: Some("customer-7".to_owned()),
        headers,
        payload: bytes::Bytes::from_static(&[0, 1, 2, 255, 0, b'\n', 0xC3]),
    })
    .unwrap();
    let bare = Message::from_parts(MessageParts {
        id: "bare".to_owned(),
        source: "/s".to_owned(),
        ty: "t".to_owned(),
        subject: None,
        time: UNIX_EPOCH - Duration::new(12, 5),
        data_content_type: None,
        key: None,
        headers: Default::default(),
        payload: bytes::Bytes::new(),
    })
    .unwrap();
    bus.publish("attrs", vec![full.clone(), bare.clone()])
        .await
        .unwrap();
    for expected in [full, bare] {
        let delivery = next_within(&mut subscription, WAIT).await;
        assert_eq!(delivery.topic(), "attrs");
        assert_eq!(delivery.attempt(), 1);
        assert_eq!(delivery.message(), &expected);
        assert_eq!(
            delivery.message().clone().into_parts(),
            expected.into_parts()
        );
        delivery.ack().await.unwrap();
    }
}

#[tokio::test]
async fn a_batch_keeps_its_order_across_insert_chunks() {
    // Read back from the database, not from the writer's cache.
    let db = TempDb::new();
    let mut config = db.config();
    config.cache_bytes = 0;
    let bus = db.open_with(config).await;
    let mut subscription = bus
        .subscribe("order", SubscribeOptions::group("g").max_in_flight(4095))
        .await
        .unwrap();
    // 4095 = 2048 + 1024 + ... + 2 + 1: every statement size is used.
    let batch: Vec<_> = (0..4095).map(|n| numbered(n, None)).collect();
    bus.publish("order", batch).await.unwrap();
    let mut deliveries = Vec::new();
    for n in 0..4095 {
        let delivery = next_within(&mut subscription, WAIT).await;
        assert_eq!(common::number(delivery.message()), n);
        deliveries.push(delivery);
    }
    futures::future::try_join_all(deliveries.into_iter().map(|d| d.ack()))
        .await
        .unwrap();
}

#[tokio::test]
async fn bad_input_is_refused_with_a_clear_error_and_nothing_is_stored() {
    let db = TempDb::new();
    let mut config = db.config();
    config.max_message_bytes = 1000;
    config.max_batch_messages = 10;
    let bus = db.open_with(config).await;
    let mut subscription = bus
        .subscribe("bad", SubscribeOptions::group("g"))
        .await
        .unwrap();

    let error = bus
        .publish("has space", vec![numbered(1, None)])
        .await
        .unwrap_err();
    assert!(matches!(error, BusError::InvalidTopic { .. }), "{error}");

    let big = Message::builder("t", "/s")
        .id("big")
        .payload("application/octet-stream", vec![7u8; 2000])
        .build()
        .unwrap();
    let error = bus
        .publish("bad", vec![numbered(1, None), big])
        .await
        .unwrap_err();
    match &error {
        BusError::TooLarge {
            topic, id, limit, ..
        } => {
            assert_eq!((topic.as_str(), id.as_str(), *limit), ("bad", "big", 1000));
        }
        other => panic!("expected TooLarge, got {other}"),
    }
    assert!(
        error.to_string().contains(db.path.to_str().unwrap()),
        "{error}"
    );

    let error = bus
        .publish("bad", (0..11).map(|n| numbered(n, None)).collect())
        .await
        .unwrap_err();
    assert!(matches!(error, BusError::Full { .. }), "{error}");
    assert!(error.to_string().contains("max_batch_messages"), "{error}");

    assert!(
        bus.publish("bad", Vec::new()).await.is_ok(),
        "an empty batch is a no-op"
    );

    // Nothing of the refused batches was stored.
    bus.publish("bad", vec![numbered(99, None)]).await.unwrap();
    let delivery = next_within(&mut subscription, WAIT).await;
    assert_eq!(delivery.message().id(), "m-99");
}

#[tokio::test]
async fn options_the_contract_refuses_are_refused() {
    let db = TempDb::new();
    let bus = db.open().await;
    let error = bus
        .subscribe("t", SubscribeOptions::default().max_in_flight(0))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("max_in_flight"), "{error}");
    let error = bus
        .subscribe("", SubscribeOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(error, BusError::InvalidTopic { .. }), "{error}");
}

#[tokio::test]
async fn urls_open_a_file_and_create_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/bus.db");
    let bus = SqliteBus::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    bus.publish("t", vec![numbered(1, None)]).await.unwrap();
    Publisher::close(&bus).await.unwrap();
    assert!(path.exists());

    let error = SqliteBus::connect("mysql://x").await.unwrap_err();
    assert!(error.to_string().contains("sqlite://"), "{error}");
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not-a.db");
    std::fs::write(&path, vec![b'x'; 8192]).unwrap();
    let error = SqliteBus::open(&path).await.unwrap_err();
    let text = error.to_string();
    assert!(text.contains(path.to_str().unwrap()), "{text}");
    assert!(text.contains("opening the database"), "{text}");
}

#[tokio::test]
async fn after_close_publish_and_subscribe_fail_with_closed() {
    let db = TempDb::new();
    let bus = db.open().await;
    let mut subscription = bus
        .subscribe("t", SubscribeOptions::group("g"))
        .await
        .unwrap();
    bus.publish("t", vec![numbered(1, None)]).await.unwrap();
    Subscriber::close(&bus).await.unwrap();
    let error = bus.publish("t", vec![numbered(2, None)]).await.unwrap_err();
    assert!(matches!(error, BusError::Closed { .. }), "{error}");
    let error = bus
        .subscribe("t", SubscribeOptions::group("g"))
        .await
        .unwrap_err();
    assert!(matches!(error, BusError::Closed { .. }), "{error}");
    use futures::StreamExt;
    let ended = tokio::time::timeout(WAIT, subscription.next())
        .await
        .unwrap();
    assert!(ended.is_none(), "close ends the subscription");
}
