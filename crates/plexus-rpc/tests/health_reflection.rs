//! The server always serves `grpc.health.v1.Health` and server reflection
//! in both the v1 and the v1alpha protocol.

mod support;

use plexus_rpc::echo::EchoService;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

#[tokio::test]
async fn health_reports_every_added_service_serving_and_unknown_ones_not_found() {
    let server = support::start(EchoService).await;
    let channel = plexus_rpc::client::ClientBuilder::new(server.url())
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    for service in ["", "plexus.echo.v1.Echo"] {
        let reply = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            reply.status(),
            ServingStatus::Serving,
            "service {service:?}"
        );
    }
    let status = health
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);

    server
        .health()
        .set_service_status(
            "plexus.echo.v1.Echo",
            tonic_health::ServingStatus::NotServing,
        )
        .await;
    let reply = health
        .check(HealthCheckRequest {
            service: "plexus.echo.v1.Echo".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.status(), ServingStatus::NotServing);
}

macro_rules! reflection_test {
    ($name:ident, $pb:path) => {
        #[tokio::test]
        async fn $name() {
            use pb::server_reflection_client::ServerReflectionClient;
            use pb::server_reflection_request::MessageRequest;
            use pb::server_reflection_response::MessageResponse;
            use prost::Message as _;
            use $pb as pb;

            let server = support::start(EchoService).await;
            let channel = plexus_rpc::client::ClientBuilder::new(server.url())
                .connect()
                .await
                .unwrap();
            let mut client = ServerReflectionClient::new(channel);
            let requests = vec![
                pb::ServerReflectionRequest {
                    host: String::new(),
                    message_request: Some(MessageRequest::ListServices(String::new())),
                },
                pb::ServerReflectionRequest {
                    host: String::new(),
                    message_request: Some(MessageRequest::FileContainingSymbol(
                        "plexus.echo.v1.Echo".into(),
                    )),
                },
            ];
            let mut replies = client
                .server_reflection_info(tokio_stream::iter(requests))
                .await
                .unwrap()
                .into_inner();

            let Some(MessageResponse::ListServicesResponse(list)) =
                replies.message().await.unwrap().unwrap().message_response
            else {
                panic!("expected a service list");
            };
            let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
            for expected in ["plexus.echo.v1.Echo", "grpc.health.v1.Health"] {
                assert!(
                    names.contains(&expected),
                    "{expected} missing from {names:?}"
                );
            }

            let Some(MessageResponse::FileDescriptorResponse(files)) =
                replies.message().await.unwrap().unwrap().message_response
            else {
                panic!("expected file descriptors");
            };
            let file =
                prost_types::FileDescriptorProto::decode(files.file_descriptor_proto[0].as_slice())
                    .unwrap();
            assert_eq!(file.package(), "plexus.echo.v1");
            let methods: Vec<_> = file.service[0].method.iter().map(|m| m.name()).collect();
            assert_eq!(methods, ["Unary", "ServerStream", "ClientStream", "Bidi"]);
        }
    };
}

reflection_test!(
    reflection_v1_lists_and_describes_services,
    tonic_reflection::pb::v1
);
reflection_test!(
    reflection_v1alpha_lists_and_describes_services,
    tonic_reflection::pb::v1alpha
);
