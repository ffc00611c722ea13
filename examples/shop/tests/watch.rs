//! `WatchOrder` (server streaming): the whole fulfilment, deadlines and
//! cancellation, over a real plexus server and client on loopback.

mod common;

use std::time::Duration;

use common::{orders_client, sample_order, wait_until};
use shop::orders::v1::{GetOrderRequest, OrderStatus, WatchOrderRequest};
use shop::orders::{OrdersConfig, start};
use tokio_stream::StreamExt;
use tonic::{Code, Request};

/// Long enough that a watch never reaches its second step during a test.
const SLOW_STEP_MILLIS: u32 = 30_000;

#[tokio::test]
async fn watch_sends_every_status_and_ends_after_delivered() {
    let orders = start(OrdersConfig::default()).await.unwrap();
    let mut client = orders_client(&orders).await;
    let placed = client
        .place_order(sample_order("cus-1"))
        .await
        .unwrap()
        .into_inner();

    let request = WatchOrderRequest {
        order_id: placed.order_id.clone(),
        step_millis: 1,
    };
    let updates: Vec<_> = client
        .watch_order(request)
        .await
        .unwrap()
        .into_inner()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    use OrderStatus::*;
    let statuses: Vec<_> = updates.iter().map(|u| u.status()).collect();
    assert_eq!(statuses, vec![Placed, Paid, Packed, Shipped, Delivered]);
    assert_eq!(
        updates.iter().map(|u| u.sequence).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4]
    );
    assert!(updates.iter().all(|u| u.order_id == placed.order_id));

    let order = client
        .get_order(GetOrderRequest {
            order_id: placed.order_id.clone(),
        })
        .await
        .unwrap();
    assert_eq!(order.into_inner().status(), Delivered);
    assert!(
        wait_until(Duration::from_secs(5), || orders
            .metrics()
            .watchers_completed()
            == 1)
        .await
    );

    // Watching a delivered order sends its status once and ends.
    let request = WatchOrderRequest {
        order_id: placed.order_id,
        step_millis: SLOW_STEP_MILLIS,
    };
    let again: Vec<_> = client
        .watch_order(request)
        .await
        .unwrap()
        .into_inner()
        .collect()
        .await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].as_ref().unwrap().status(), Delivered);
}

#[tokio::test]
async fn watch_of_an_unknown_order_is_not_found_and_a_huge_step_is_invalid() {
    let orders = start(OrdersConfig::default()).await.unwrap();
    let mut client = orders_client(&orders).await;

    let status = client
        .watch_order(WatchOrderRequest {
            order_id: "ord-9".into(),
            step_millis: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    let placed = client
        .place_order(sample_order("cus-1"))
        .await
        .unwrap()
        .into_inner();
    let status = client
        .watch_order(WatchOrderRequest {
            order_id: placed.order_id,
            step_millis: u32::MAX,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("step_millis:"),
        "{}",
        status.message()
    );
    assert_eq!(orders.metrics().watchers_started(), 0);
}

#[tokio::test]
async fn a_watch_past_its_deadline_ends_deadline_exceeded_and_its_producer_stops() {
    let orders = start(OrdersConfig::default()).await.unwrap();
    let mut client = orders_client(&orders).await;
    let placed = client
        .place_order(sample_order("cus-1"))
        .await
        .unwrap()
        .into_inner();

    let mut request = Request::new(WatchOrderRequest {
        order_id: placed.order_id,
        step_millis: SLOW_STEP_MILLIS,
    });
    request.set_timeout(Duration::from_millis(50));
    let mut updates = client.watch_order(request).await.unwrap().into_inner();
    let first = updates.next().await.unwrap().unwrap();
    assert_eq!(first.status(), OrderStatus::Placed);
    let end = tokio::time::timeout(Duration::from_secs(5), updates.next())
        .await
        .expect("the stream ends within its deadline, not after the next step");
    assert_eq!(end.unwrap().unwrap_err().code(), Code::DeadlineExceeded);

    let metrics = orders.metrics().clone();
    assert!(
        wait_until(Duration::from_secs(5), || metrics
            .watchers_deadline_exceeded()
            == 1)
        .await
    );
    assert_eq!(metrics.watchers_cancelled(), 0);
    assert_eq!(metrics.watchers_completed(), 0);
}

#[tokio::test]
async fn dropping_a_watch_stops_its_producer() {
    let orders = start(OrdersConfig::default()).await.unwrap();
    let mut client = orders_client(&orders).await;
    let placed = client
        .place_order(sample_order("cus-1"))
        .await
        .unwrap()
        .into_inner();

    let request = WatchOrderRequest {
        order_id: placed.order_id.clone(),
        step_millis: SLOW_STEP_MILLIS,
    };
    let mut updates = client.watch_order(request).await.unwrap().into_inner();
    assert_eq!(
        updates.next().await.unwrap().unwrap().status(),
        OrderStatus::Placed
    );
    let metrics = orders.metrics().clone();
    assert_eq!(metrics.watchers_cancelled(), 0);
    drop(updates);

    assert!(
        wait_until(Duration::from_secs(5), || metrics.watchers_cancelled() == 1).await,
        "the server saw the cancel"
    );
    assert_eq!(metrics.watchers_started(), 1);
    assert_eq!(metrics.watchers_completed(), 0);
    let order = client
        .get_order(GetOrderRequest {
            order_id: placed.order_id,
        })
        .await
        .unwrap();
    assert_eq!(
        order.into_inner().status(),
        OrderStatus::Placed,
        "a stopped watch moves the order no further"
    );
}
