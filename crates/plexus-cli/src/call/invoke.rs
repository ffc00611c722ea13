//! Making the call, for each of the four call kinds, and printing replies
//! as they arrive.

use std::future::Future;

use http::uri::PathAndQuery;
use prost_reflect::{DynamicMessage, MethodDescriptor};
use tokio::sync::oneshot;
use tonic::Status;
use tonic::client::Grpc;
use tonic::codec::Streaming;

use super::client::Client;
use super::codec::DynamicCodec;
use super::error::{Failure, chain};
use super::input::{self, Documents};
use super::output::Output;

/// Calls `method` with the requests in `documents`, printing every reply.
pub async fn call(
    client: &Client,
    method: &MethodDescriptor,
    documents: Option<Documents>,
    output: &mut Output,
) -> Result<(), Failure> {
    let path = format!("/{}/{}", method.parent_service().full_name(), method.name());
    let path = PathAndQuery::try_from(path.as_str()).map_err(|e| {
        Failure::unusable(format!(
            "the method path {path} is not a valid URI path: {e}"
        ))
    })?;
    let codec = DynamicCodec::new(method.output());
    let mut grpc = Grpc::new(client.channel());
    grpc.ready().await.map_err(|e| {
        Status::unavailable(format!(
            "the connection to {} failed: {}",
            client.url(),
            chain(&*e)
        ))
    })?;
    match (method.is_client_streaming(), method.is_server_streaming()) {
        (false, false) => {
            let request = input::single(documents, &method.input()).await?;
            let reply = grpc.unary(client.request(request)?, path, codec).await?;
            output.message(reply.get_ref())
        }
        (false, true) => {
            let request = input::single(documents, &method.input()).await?;
            let replies = grpc
                .server_streaming(client.request(request)?, path, codec)
                .await?;
            print_all(replies.into_inner(), output).await
        }
        (true, false) => {
            let (failed, input_failure) = oneshot::channel();
            let requests = input::stream(documents, method.input(), failed);
            let call = async {
                let reply = grpc
                    .client_streaming(client.request(requests)?, path, codec)
                    .await?;
                output.message(reply.get_ref())
            };
            unless_input_fails(call, input_failure).await
        }
        (true, true) => {
            let (failed, input_failure) = oneshot::channel();
            let requests = input::stream(documents, method.input(), failed);
            let call = async {
                let replies = grpc
                    .streaming(client.request(requests)?, path, codec)
                    .await?;
                print_all(replies.into_inner(), output).await
            };
            unless_input_fails(call, input_failure).await
        }
    }
}

/// Prints each reply of `replies` as it arrives; the stream's final status
/// decides the result.
async fn print_all(
    mut replies: Streaming<DynamicMessage>,
    output: &mut Output,
) -> Result<(), Failure> {
    while let Some(reply) = replies.message().await? {
        output.message(&reply)?;
    }
    Ok(())
}

/// Runs `call` unless a request message cannot be read first; then the call
/// is dropped (and so cancelled) and the input's error returned.
async fn unless_input_fails(
    call: impl Future<Output = Result<(), Failure>>,
    input_failure: oneshot::Receiver<Failure>,
) -> Result<(), Failure> {
    tokio::select! {
        biased;
        Ok(failure) = input_failure => Err(failure),
        result = call => result,
    }
}
