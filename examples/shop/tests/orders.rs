//! `shop.orders.v1.Orders`: unary and client-streaming calls, over a real
//! plexus server and client on loopback.

mod common;

use common::{item, orders_client, sample_order};
use shop::orders::v1::{GetOrderRequest, OrderStatus, PlaceOrderRequest};
use shop::orders::{OrdersConfig, start};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

#[tokio::test]
async fn placed_order_is_readable_back_with_its_total() {
    let orders = start(OrdersConfig::default()).await.unwrap();
    let mut client = orders_client(&orders).await;

    let placed = client
        .place_order(sample_order("cus-1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(placed.total_cents, 699);
    assert_eq!(placed.status(), OrderStatus::Placed);

    let order = client
        .get_order(GetOrderRequest {
            order_id: placed.order_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(order.order_id, placed.order_id);
    assert_eq!(order.customer_id, "cus-1");
    assert_eq!(order.items, sample_order("cus-1").items);
    assert_eq!(order.total_cents, 699);
    assert_eq!(order.status(), OrderStatus::Placed);
    assert_eq!(orders.metrics().orders_placed(), 1);
}

#[tokio::test]
async fn each_invalid_field_is_invalid_argument_naming_it() {
    let orders = start(OrdersConfig::default()).await.unwrap();
    let mut client = orders_client(&orders).await;
    let cases = [
        (
            PlaceOrderRequest {
                customer_id: String::new(),
                ..sample_order("")
            },
            "customer_id",
        ),
        (
            PlaceOrderRequest {
                items: vec![],
                ..sample_order("cus-1")
            },
            "items",
        ),
        (
            PlaceOrderRequest {
                items: vec![item("sku-a", 1, 100), item("sku-b", 0, 100)],
                ..sample_order("cus-1")
            },
            "items[1].quantity",
        ),
        (
            PlaceOrderRequest {
                items: vec![item("", 1, 100)],
                ..sample_order("cus-1")
            },
            "items[0].sku",
        ),
        (
            PlaceOrderRequest {
                items: vec![item("sku-a", 1, 0)],
                ..sample_order("cus-1")
            },
            "items[0].unit_price_cents",
        ),
    ];
    for (request, field) in cases {
        let status = client.place_order(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert!(
            status.message().starts_with(&format!("{field}:")),
            "{field}: {}",
            status.message()
        );
    }
    assert_eq!(orders.metrics().orders_placed(), 0);
}

#[tokio::test]
async fn unknown_order_is_not_found_and_empty_id_is_invalid() {
    let orders = start(OrdersConfig::default()).await.unwrap();
    let mut client = orders_client(&orders).await;

    let status = client
        .get_order(GetOrderRequest {
            order_id: "ord-404".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains("ord-404"), "{}", status.message());

    let status = client
        .get_order(GetOrderRequest {
            order_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("order_id:"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn a_full_store_answers_resource_exhausted() {
    let mut config = OrdersConfig::default();
    config.max_orders = 2;
    let orders = start(config).await.unwrap();
    let mut client = orders_client(&orders).await;

    client.place_order(sample_order("cus-1")).await.unwrap();
    client.place_order(sample_order("cus-2")).await.unwrap();
    let status = client.place_order(sample_order("cus-3")).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(
        status.message().contains("max_orders"),
        "{}",
        status.message()
    );
    assert_eq!(orders.metrics().orders_placed(), 2);
}

#[tokio::test]
async fn import_stores_valid_orders_and_reports_the_first_rejections() {
    let orders = start(OrdersConfig::default()).await.unwrap();
    let mut client = orders_client(&orders).await;
    // Orders 3, 10, 20, …, 140 are invalid: 15 rejections, 10 reported.
    let invalid = |i: usize| i == 3 || (i.is_multiple_of(10) && i > 0);
    let batch: Vec<_> = (0..150)
        .map(|i| {
            let mut order = sample_order(&format!("cus-{i}"));
            if invalid(i) {
                order.items[1].quantity = 0;
            }
            order
        })
        .collect();

    let reply = client
        .import_orders(tokio_stream::iter(batch))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.accepted, 135);
    assert_eq!(reply.rejected, 15);
    assert_eq!(reply.order_ids.len(), 135);
    let indexes: Vec<u32> = reply.first_rejections.iter().map(|r| r.index).collect();
    assert_eq!(indexes, vec![3, 10, 20, 30, 40, 50, 60, 70, 80, 90]);
    assert!(
        reply
            .first_rejections
            .iter()
            .all(|r| r.reason.starts_with("items[1].quantity:"))
    );

    for (id, customer) in reply
        .order_ids
        .iter()
        .zip((0..150).filter(|i| !invalid(*i)))
    {
        let order = client
            .get_order(GetOrderRequest {
                order_id: id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(order.customer_id, format!("cus-{customer}"));
    }
    assert_eq!(orders.metrics().orders_imported(), 135);
}

#[tokio::test]
async fn an_import_over_its_bound_imports_nothing() {
    let mut config = OrdersConfig::default();
    config.max_orders_per_import = 5;
    let orders = start(config).await.unwrap();
    let mut client = orders_client(&orders).await;

    let five = (0..5)
        .map(|i| sample_order(&format!("cus-{i}")))
        .collect::<Vec<_>>();
    let reply = client
        .import_orders(tokio_stream::iter(five))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.accepted, 5);

    let six = (0..6)
        .map(|i| sample_order(&format!("cus-{i}")))
        .collect::<Vec<_>>();
    let status = client
        .import_orders(tokio_stream::iter(six))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(
        status.message().contains("at most 5"),
        "{}",
        status.message()
    );
    let status = client
        .get_order(GetOrderRequest {
            order_id: "ord-6".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        Code::NotFound,
        "nothing of the refused import is stored"
    );
    assert_eq!(orders.metrics().orders_imported(), 5);
}

#[tokio::test]
async fn an_import_the_store_cannot_hold_imports_nothing() {
    let mut config = OrdersConfig::default();
    config.max_orders = 3;
    let orders = start(config).await.unwrap();
    let mut client = orders_client(&orders).await;
    client.place_order(sample_order("cus-0")).await.unwrap();

    let three = (0..3)
        .map(|i| sample_order(&format!("cus-{i}")))
        .collect::<Vec<_>>();
    let status = client
        .import_orders(tokio_stream::iter(three))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    let status = client
        .get_order(GetOrderRequest {
            order_id: "ord-2".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn health_reports_the_service_serving() {
    let orders = start(OrdersConfig::default()).await.unwrap();
    let mut health = HealthClient::new(common::channel(&orders).await);
    let reply = health
        .check(HealthCheckRequest {
            service: "shop.orders.v1.Orders".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.status(), ServingStatus::Serving);
}
