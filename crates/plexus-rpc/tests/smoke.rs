//! The four call kinds through the plexus server and client stacks.

mod support;

use plexus_rpc::echo::EchoService;
use plexus_rpc::echo::v1::{EchoRequest, StreamRequest};
use tokio_stream::StreamExt;

#[tokio::test]
async fn all_four_call_kinds_work_end_to_end() {
    let server = support::start(EchoService).await;
    let mut client = support::client(&server).await;

    let reply = client
        .unary(EchoRequest {
            payload: b"ping".to_vec().into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.payload.as_ref(), b"ping");

    let replies: Vec<_> = client
        .server_stream(StreamRequest {
            payload: b"x".to_vec().into(),
            count: 5,
        })
        .await
        .unwrap()
        .into_inner()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    assert_eq!(
        replies.iter().map(|r| r.sequence).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4]
    );

    let requests = tokio_stream::iter((0..7).map(|i| EchoRequest {
        payload: vec![i].into(),
    }));
    let reply = client.client_stream(requests).await.unwrap().into_inner();
    assert_eq!(reply.sequence, 7);
    assert_eq!(reply.payload.as_ref(), &[6]);

    let requests = tokio_stream::iter((0..3).map(|i| EchoRequest {
        payload: vec![i].into(),
    }));
    let replies: Vec<_> = client
        .bidi(requests)
        .await
        .unwrap()
        .into_inner()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    assert_eq!(replies.len(), 3);
    assert_eq!(replies[2].payload.as_ref(), &[2]);

    server.shutdown().await.unwrap();
}
