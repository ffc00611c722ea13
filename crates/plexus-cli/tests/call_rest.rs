//! `plexus call` on REST routes: JSON in and out, streams line by line, and
//! HTTP errors with the gateway's JSON error body.

use std::process::Output;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tokio::net::TcpListener;

async fn serve() -> String {
    let app = Router::new()
        .route("/v1/orders/{id}", get(|axum::extract::Path(id): axum::extract::Path<String>| async move {
            axum::Json(serde_json::json!({"orderId": id, "status": "PLACED"}))
        }))
        .route("/v1/orders", post(|headers: HeaderMap, body: String| async move {
            let body: serde_json::Value = serde_json::from_str(&body).unwrap();
            let timeout = headers
                .get("plexus-timeout-ms")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            axum::Json(serde_json::json!({"received": body, "timeoutMs": timeout}))
        }))
        .route("/v1/orders/{id}/watch", get(|| async {
            (
                [(header::CONTENT_TYPE, "text/event-stream")],
                "data: {\"status\":\"PLACED\"}\n\ndata: {\"status\":\"PAID\"}\n\n",
            )
        }))
        .route("/v1/broken/watch", get(|| async {
            (
                [(header::CONTENT_TYPE, "text/event-stream")],
                "data: {\"status\":\"PLACED\"}\n\nevent: error\ndata: {\"code\":\"UNAVAILABLE\",\"message\":\"upstream went away\"}\n\n",
            )
        }))
        .route("/v1/missing", get(|| async {
            (
                StatusCode::NOT_FOUND,
                axum::Json(serde_json::json!({"code": "NOT_FOUND", "message": "order ord-9 does not exist", "details": []})),
            )
                .into_response()
        }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

async fn plexus(args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_plexus"))
        .arg("call")
        .args(args)
        .output()
        .await
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn get_prints_the_json_answer() {
    let base = serve().await;
    let out = plexus(&[&format!("{base}/v1/orders/ord-1")]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let reply: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(reply["orderId"], "ord-1");
}

#[tokio::test]
async fn data_is_posted_with_the_remaining_timeout() {
    let base = serve().await;
    let out = plexus(&[
        &format!("{base}/v1/orders"),
        "-d",
        r#"{"customerId":"c-1"}"#,
        "--timeout",
        "5s",
    ])
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let reply: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(reply["received"]["customerId"], "c-1");
    let timeout: u64 = reply["timeoutMs"].as_str().unwrap().parse().unwrap();
    assert!(timeout > 0 && timeout <= 5000, "{timeout}");
}

#[tokio::test]
async fn server_sent_events_print_one_message_per_line() {
    let base = serve().await;
    let out = plexus(&[&format!("{base}/v1/orders/ord-1/watch")]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<_> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(lines, [r#"{"status":"PLACED"}"#, r#"{"status":"PAID"}"#]);
}

#[tokio::test]
async fn a_stream_error_event_fails_after_the_messages_before_it() {
    let base = serve().await;
    let out = plexus(&[&format!("{base}/v1/broken/watch")]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out).trim(), r#"{"status":"PLACED"}"#);
    assert!(
        stderr(&out).contains("UNAVAILABLE: upstream went away"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn http_errors_show_status_code_and_message() {
    let base = serve().await;
    let out = plexus(&[&format!("{base}/v1/missing")]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("ERROR: HTTP 404 NOT_FOUND: order ord-9 does not exist"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn a_refused_connection_names_the_route() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let out = plexus(&[&format!("http://{addr}/v1/orders/ord-1")]).await;
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains(&addr.to_string()), "{}", stderr(&out));
}

#[tokio::test]
async fn a_method_name_after_a_route_is_refused() {
    let base = serve().await;
    let out = plexus(&[
        &format!("{base}/v1/orders/ord-1"),
        "shop.orders.v1.Orders/GetOrder",
    ])
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("takes no method name"),
        "{}",
        stderr(&out)
    );
}
