//! `plexus call` against in-process servers: the built binary is run as a
//! user would run it, and its output, errors and exit codes are checked.

mod support;

use std::time::{Duration, Instant};

use plexus_rpc::Server;
use plexus_rpc::auth::{Policy, StaticTokens};
use plexus_rpc::tls::ServerTls;
use serde_json::{Value, json};
use support::certs::{CLIENT_ID, Pki};
use support::{BareReflection, TestEcho, Unary, plexus, plexus_with_stdin};

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {line}: {e}")))
        .collect()
}

#[tokio::test]
async fn unary_call_round_trips_json() {
    let server = support::echo_server().await;
    let url = server.url();

    let run = plexus(&[
        "call",
        &url,
        "plexus.echo.v1.Echo/Unary",
        "-d",
        r#"{"payload":"aGk="}"#,
    ])
    .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.stdout, "{\"payload\":\"aGk=\"}\n");

    // The dot form, a bare host:port, the short service name and defaults.
    let addr = server.local_addr().to_string();
    let run = plexus(&[
        "call",
        &addr,
        "Echo.Unary",
        "-d",
        r#"{"payload":"aGk="}"#,
        "--emit-defaults",
    ])
    .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        json_lines(&run.stdout),
        vec![json!({"payload": "aGk=", "sequence": "0"})]
    );

    // No -d: the empty message.
    let run = plexus(&["call", &url, "plexus.echo.v1.Echo/Unary", "--emit-defaults"]).await;
    assert_eq!(
        json_lines(&run.stdout),
        vec![json!({"payload": "", "sequence": "0"})],
        "{run:?}"
    );
}

#[tokio::test]
async fn server_streaming_prints_one_line_per_reply() {
    let server = support::echo_server().await;
    let run = plexus(&[
        "call",
        &server.url(),
        "plexus.echo.v1.Echo/ServerStream",
        "-d",
        r#"{"payload":"eA==","count":5}"#,
        "--emit-defaults",
    ])
    .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let expected: Vec<Value> = (0..5)
        .map(|i| json!({"payload": "eA==", "sequence": i.to_string()}))
        .collect();
    assert_eq!(json_lines(&run.stdout), expected);
}

#[tokio::test]
async fn client_streaming_and_bidi_take_a_sequence_of_messages() {
    let server = support::echo_server().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("requests.ndjson");
    std::fs::write(
        &file,
        "{\"payload\":\"YQ==\"}\n{\"payload\":\"Yg==\"}\n\n{\"payload\":\"bGFzdA==\"}\n",
    )
    .unwrap();
    let from_file = format!("@{}", file.display());

    let run = plexus(&[
        "call",
        &server.url(),
        "plexus.echo.v1.Echo/ClientStream",
        "-d",
        &from_file,
    ])
    .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        json_lines(&run.stdout),
        vec![json!({"payload": "bGFzdA==", "sequence": "3"})]
    );

    let stdin = "{\"payload\":\"YQ==\"}\n{\"payload\":\"Yg==\"}\n";
    let run = plexus_with_stdin(
        &["call", &server.url(), "plexus.echo.v1.Echo/Bidi", "-d", "-"],
        Some(stdin),
    )
    .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        json_lines(&run.stdout),
        vec![
            json!({"payload": "YQ=="}),
            json!({"payload": "Yg==", "sequence": "1"})
        ]
    );
}

#[tokio::test]
async fn list_shows_services_then_methods_with_types_and_kinds() {
    let server = support::echo_server().await;
    let run = plexus(&["call", &server.url(), "--list"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let services = run.lines();
    assert!(services.contains(&"plexus.echo.v1.Echo"), "{services:?}");
    assert!(services.contains(&"grpc.health.v1.Health"), "{services:?}");

    let run = plexus(&["call", &server.url(), "--list", "plexus.echo.v1.Echo"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        run.lines(),
        vec![
            "plexus.echo.v1.Echo",
            "  rpc Unary(plexus.echo.v1.EchoRequest) returns (plexus.echo.v1.EchoReply);  // unary",
            "  rpc ServerStream(plexus.echo.v1.StreamRequest) returns (stream plexus.echo.v1.EchoReply);  // server streaming",
            "  rpc ClientStream(stream plexus.echo.v1.EchoRequest) returns (plexus.echo.v1.EchoReply);  // client streaming",
            "  rpc Bidi(stream plexus.echo.v1.EchoRequest) returns (stream plexus.echo.v1.EchoReply);  // bidirectional streaming",
        ]
    );
}

#[tokio::test]
async fn unknown_service_or_method_is_refused_with_what_exists() {
    let server = support::echo_server().await;
    let run = plexus(&["call", &server.url(), "plexus.echo.v1.Echo/Shout"]).await;
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr
            .contains("unknown method `Shout` in service plexus.echo.v1.Echo")
            && run
                .stderr
                .contains("Unary, ServerStream, ClientStream, Bidi"),
        "{}",
        run.stderr
    );

    let run = plexus(&["call", &server.url(), "plexus.nope.v1.Nope/Unary"]).await;
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr.contains("unknown service `plexus.nope.v1.Nope`")
            && run.stderr.contains("plexus.echo.v1.Echo"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn bad_json_and_unknown_fields_are_named() {
    let server = support::echo_server().await;
    let url = server.url();

    let run = plexus(&[
        "call",
        &url,
        "plexus.echo.v1.Echo/Unary",
        "-d",
        r#"{"payload":"#,
    ])
    .await;
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr.contains("-d: invalid JSON: EOF while parsing"),
        "{}",
        run.stderr
    );

    let run = plexus(&[
        "call",
        &url,
        "plexus.echo.v1.Echo/Unary",
        "-d",
        r#"{"paylod":"aGk="}"#,
    ])
    .await;
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr
            .contains("not a valid plexus.echo.v1.EchoRequest")
            && run.stderr.contains("'paylod'"),
        "{}",
        run.stderr
    );

    let run = plexus(&["call", &url, "plexus.echo.v1.Echo/Unary", "-d", "{} {}"]).await;
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr.contains("more than one message"),
        "{}",
        run.stderr
    );

    // A bad message in the middle of a stream cancels the call: no reply.
    let run = plexus(&[
        "call",
        &url,
        "plexus.echo.v1.Echo/ClientStream",
        "-d",
        r#"{"payload":"YQ=="} {"count":1}"#,
    ])
    .await;
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr.contains("request message 2") && run.stderr.contains("'count'"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "");
}

#[tokio::test]
async fn a_status_from_the_server_is_printed_with_its_code() {
    let server = support::echo_server().await;
    let run = plexus(&[
        "call",
        &server.url(),
        "plexus.echo.v1.Echo/ServerStream",
        "-d",
        r#"{"count":4000000000}"#,
    ])
    .await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr
            .starts_with("ERROR: INVALID_ARGUMENT: count is 4000000000"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn an_expired_deadline_ends_the_call_with_deadline_exceeded() {
    let server = support::serve(Server::builder(), TestEcho(Unary::Stalls)).await;
    let started = Instant::now();
    let run = plexus(&[
        "call",
        &server.url(),
        "plexus.echo.v1.Echo/Unary",
        "--timeout",
        "700ms",
    ])
    .await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr.starts_with("ERROR: DEADLINE_EXCEEDED: "),
        "{}",
        run.stderr
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn headers_tokens_and_the_deadline_reach_the_server() {
    let server = support::serve(Server::builder(), TestEcho(Unary::EchoesHeaders)).await;
    let run = plexus(&[
        "call",
        &server.url(),
        "plexus.echo.v1.Echo/Unary",
        "-H",
        "X-Tenant: acme",
        "--token",
        "s3cret",
    ])
    .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    // base64("acme|Bearer s3cret"); no deadline.
    assert_eq!(
        json_lines(&run.stdout),
        vec![json!({"payload": "YWNtZXxCZWFyZXIgczNjcmV0"})]
    );

    // --timeout reaches the server as the call's deadline.
    let run = plexus(&[
        "call",
        &server.url(),
        "plexus.echo.v1.Echo/Unary",
        "--timeout",
        "20s",
    ])
    .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let remaining: u64 = json_lines(&run.stdout)[0]["sequence"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=20_000).contains(&remaining),
        "the server saw {remaining} ms left"
    );

    let policy = Policy::default_deny()
        .allow(
            "/plexus.echo.v1.Echo/*",
            ["spiffe://plexus.test/token-user"],
        )
        .allow_anyone("/grpc.reflection.v1.ServerReflection/*");
    let builder = Server::builder()
        .authorize(policy)
        .bearer_tokens(StaticTokens::new().with("s3cret", "spiffe://plexus.test/token-user"));
    let guarded = support::serve(builder, plexus_rpc::echo::EchoService).await;
    let call = ["call", &guarded.url(), "plexus.echo.v1.Echo/Unary"];
    let run = plexus(&call).await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr.starts_with("ERROR: UNAUTHENTICATED: "),
        "{}",
        run.stderr
    );
    let run = plexus(&[&call[..], &["--token", "s3cret"]].concat()).await;
    assert_eq!(run.code, Some(0), "{run:?}");
}

#[tokio::test]
async fn tls_and_mutual_tls_calls_verify_with_the_given_ca() {
    let pki = Pki::new();
    let tls = ServerTls::from_pem(&pki.server.0, &pki.server.1)
        .unwrap()
        .client_ca_pem(&pki.ca_pem)
        .unwrap();
    let policy = Policy::default_deny()
        .allow("/plexus.echo.v1.Echo/*", [CLIENT_ID])
        .allow_anyone("/grpc.reflection.v1.ServerReflection/*");
    let server = support::serve(
        Server::builder().tls(tls).authorize(policy),
        plexus_rpc::echo::EchoService,
    )
    .await;
    let addr = server.local_addr().to_string();
    let ca = pki.ca_file.to_str().unwrap();

    // TLS without a client certificate: reflection is open, Echo is not.
    let run = plexus(&["call", &addr, "--tls", "--ca", ca, "--list"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.lines().contains(&"plexus.echo.v1.Echo"), "{run:?}");
    let unary = [
        "call",
        &addr,
        "plexus.echo.v1.Echo/Unary",
        "--tls",
        "--ca",
        ca,
        "-d",
        r#"{"payload":"aGk="}"#,
    ];
    let run = plexus(&unary).await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr.starts_with("ERROR: UNAUTHENTICATED: "),
        "{}",
        run.stderr
    );

    // Mutual TLS: the client certificate is the identity the policy allows.
    let identity = [
        "--cert",
        pki.client_cert_file.to_str().unwrap(),
        "--key",
        pki.client_key_file.to_str().unwrap(),
    ];
    let run = plexus(&[&unary[..], &identity[..]].concat()).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.stdout, "{\"payload\":\"aGk=\"}\n");

    // A CA that did not sign the server's certificate is refused.
    let other = Pki::new();
    let run = plexus(&[
        "call",
        &addr,
        "--tls",
        "--ca",
        other.ca_file.to_str().unwrap(),
        "--list",
    ])
    .await;
    assert_eq!(run.code, Some(3), "{run:?}");
    assert!(
        run.stderr.contains(&format!("https://{addr}")),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn reflection_falls_back_to_v1alpha() {
    let server = support::bare_server(BareReflection::V1AlphaOnly).await;
    let run = plexus(&[
        "call",
        &server.url(),
        "plexus.echo.v1.Echo/Unary",
        "-d",
        r#"{"payload":"aGk="}"#,
    ])
    .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.stdout, "{\"payload\":\"aGk=\"}\n");
    let run = plexus(&["call", &server.url(), "--list"]).await;
    assert_eq!(
        run.lines(),
        vec![
            "grpc.reflection.v1alpha.ServerReflection",
            "plexus.echo.v1.Echo"
        ]
    );
}

#[tokio::test]
async fn servers_without_reflection_or_unreachable_are_named() {
    let server = support::bare_server(BareReflection::None).await;
    let run = plexus(&["call", &server.url(), "--list"]).await;
    assert_eq!(run.code, Some(3), "{run:?}");
    assert!(
        run.stderr.contains("offers no server reflection"),
        "{}",
        run.stderr
    );

    // A port nothing listens on (bound, then released).
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{free}");
    let run = plexus(&["call", &url, "plexus.echo.v1.Echo/Unary"]).await;
    assert_eq!(run.code, Some(3), "{run:?}");
    assert!(
        run.stderr.contains(&format!("cannot connect to {url}")) && run.stderr.contains("refused"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn bidi_from_standard_input_answers_each_message_as_it_is_entered() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    let server = support::echo_server().await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_plexus"))
        .args(["call", &server.url(), "plexus.echo.v1.Echo/Bidi", "-d", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut replies = BufReader::new(child.stdout.take().unwrap()).lines();
    let bound = Duration::from_secs(30);
    for (i, payload) in ["YQ==", "Yg==", "Yw=="].into_iter().enumerate() {
        // The next message is written only after the previous reply is read.
        stdin
            .write_all(format!("{{\"payload\":\"{payload}\"}}\n").as_bytes())
            .await
            .unwrap();
        let line = tokio::time::timeout(bound, replies.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let reply: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(reply["payload"], payload);
        assert_eq!(reply["sequence"].as_str().unwrap_or("0"), i.to_string());
    }
    drop(stdin);
    assert_eq!(
        tokio::time::timeout(bound, replies.next_line())
            .await
            .unwrap()
            .unwrap(),
        None
    );
    let status = tokio::time::timeout(bound, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
}
