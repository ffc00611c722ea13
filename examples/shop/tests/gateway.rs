//! The shop's REST gateway in front of a real orders service: place, read
//! and watch an order over HTTP/JSON, the errors, and the OpenAPI document.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value as Json, json};
use shop::orders::{OrdersConfig, start};

/// One HTTP exchange: (status, content type, body).
async fn send(
    client: &Client<HttpConnector, Full<Bytes>>,
    method: &str,
    url: String,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut request = http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::copy_from_slice(body.as_bytes())))
        .expect("request");
    tokio::time::timeout(std::time::Duration::from_secs(10), async {
        let response = client.request(request).await.expect("send");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (
            status,
            content_type,
            String::from_utf8_lossy(&body).into_owned(),
        )
    })
    .await
    .expect("an answer within 10 s")
}

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

const ORDER: &str = r#"{"customerId": "cus-1", "items": [
    {"sku": "sku-mug", "quantity": 2, "unitPriceCents": "250"},
    {"sku": "sku-tea", "quantity": 1, "unit_price_cents": 199}]}"#;

#[tokio::test]
async fn place_get_and_watch_an_order_over_rest() {
    let orders = start(OrdersConfig::default()).await.unwrap();
    let gateway = shop::gateway::start(&orders.url()).await.unwrap();
    let http = client();
    let base = gateway.url();
    let json_type = [("content-type", "application/json")];

    let (status, content_type, body) = send(
        &http,
        "POST",
        format!("{base}/v1/orders"),
        &json_type,
        ORDER,
    )
    .await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "application/json"),
        "{body}"
    );
    let placed: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(placed["totalCents"], "699", "uint64 is a JSON string");
    assert_eq!(placed["status"], "ORDER_STATUS_PLACED");
    let id = placed["orderId"].as_str().expect("an order id").to_owned();

    let (status, _, body) = send(&http, "GET", format!("{base}/v1/orders/{id}"), &[], "").await;
    assert_eq!(status, 200, "{body}");
    let order: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(order["customerId"], "cus-1");
    assert_eq!(
        order["items"][1],
        json!({"sku": "sku-tea", "quantity": 1, "unitPriceCents": "199"})
    );

    let (status, content_type, body) = send(
        &http,
        "GET",
        format!("{base}/v1/orders/{id}/watch?stepMillis=1"),
        &[],
        "",
    )
    .await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "text/event-stream"),
        "{body}"
    );
    let statuses: Vec<String> = body
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let data = e
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not a data event: {e}"));
            let update: Json = serde_json::from_str(data).unwrap();
            assert_eq!(update["orderId"], id.as_str());
            update["status"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    assert_eq!(
        statuses,
        ["PLACED", "PAID", "PACKED", "SHIPPED", "DELIVERED"].map(|s| format!("ORDER_STATUS_{s}"))
    );

    let ndjson = [("accept", "application/x-ndjson")];
    let (status, content_type, body) = send(
        &http,
        "GET",
        format!("{base}/v1/orders/{id}/watch?stepMillis=1"),
        &ndjson,
        "",
    )
    .await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "application/x-ndjson")
    );
    assert_eq!(
        body.lines().count(),
        1,
        "a delivered order streams its status once: {body}"
    );
}

#[tokio::test]
async fn errors_are_json_with_the_mapped_status() {
    let orders = start(OrdersConfig::default()).await.unwrap();
    let gateway = shop::gateway::start(&orders.url()).await.unwrap();
    let http = client();
    let base = gateway.url();
    let json_type = [("content-type", "application/json")];

    let (status, _, body) = send(&http, "GET", format!("{base}/v1/orders/ord-nope"), &[], "").await;
    let error: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (status, error["code"].as_str()),
        (404, Some("NOT_FOUND")),
        "{body}"
    );

    let bad =
        r#"{"customerId": "cus-1", "items": [{"sku": "x", "quantity": 0, "unitPriceCents": "1"}]}"#;
    let (status, _, body) = send(&http, "POST", format!("{base}/v1/orders"), &json_type, bad).await;
    let error: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("INVALID_ARGUMENT")),
        "{body}"
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap_or("")
            .contains("items[0].quantity"),
        "{body}"
    );

    let unknown = r#"{"customerId": "cus-1", "coupon": "FREE"}"#;
    let (status, _, body) = send(
        &http,
        "POST",
        format!("{base}/v1/orders"),
        &json_type,
        unknown,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("unknown field `coupon`"), "{body}");

    // A watch past its deadline ends with a DEADLINE_EXCEEDED error event.
    let (_, _, placed) = send(
        &http,
        "POST",
        format!("{base}/v1/orders"),
        &json_type,
        ORDER,
    )
    .await;
    let id = serde_json::from_str::<Json>(&placed).unwrap()["orderId"]
        .as_str()
        .unwrap()
        .to_owned();
    let timeout = [("plexus-timeout-ms", "300")];
    let (status, _, body) = send(
        &http,
        "GET",
        format!("{base}/v1/orders/{id}/watch?stepMillis=60000"),
        &timeout,
        "",
    )
    .await;
    assert_eq!(status, 200);
    let last = body
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .last()
        .unwrap_or_default();
    assert!(last.starts_with("event: error\ndata: "), "{body}");
    assert!(last.contains("DEADLINE_EXCEEDED"), "{body}");
}

#[tokio::test]
async fn the_openapi_document_lists_the_three_routes() {
    let orders = start(OrdersConfig::default()).await.unwrap();
    let gateway = shop::gateway::start(&orders.url()).await.unwrap();
    let (status, _, body) = send(
        &client(),
        "GET",
        format!("{}/openapi.json", gateway.url()),
        &[],
        "",
    )
    .await;
    assert_eq!(status, 200);
    let doc: Json = serde_json::from_str(&body).unwrap();
    let mut paths: Vec<(String, Vec<String>)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .map(|(path, item)| {
            (
                path.clone(),
                item.as_object().expect("item").keys().cloned().collect(),
            )
        })
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            ("/v1/orders".to_owned(), vec!["post".to_owned()]),
            ("/v1/orders/{order_id}".to_owned(), vec!["get".to_owned()]),
            (
                "/v1/orders/{order_id}/watch".to_owned(),
                vec!["get".to_owned()]
            ),
        ]
    );
}
