//! [`Reflection`]: asks the server what it serves (gRPC server reflection,
//! `grpc.reflection.v1`, falling back to `v1alpha`) and builds a
//! [`DescriptorPool`] of the files that describe a symbol.
//!
//! The two protocol versions have the same messages on the wire and differ
//! only in their service name, so one set of generated types (v1) is used
//! for both; only the path of the call changes.

use std::collections::HashMap;

use http::uri::PathAndQuery;
use prost::Message;
use prost_reflect::DescriptorPool;
use prost_types::FileDescriptorProto;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::client::Grpc;
use tonic::codec::Streaming;
use tonic::{Code, Status};
use tonic_prost::ProstCodec;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};

use super::client::Client;
use super::error::{Failure, chain};

/// Most proto files fetched to describe one symbol.
const MAX_FILES: usize = 1024;

/// A version of the reflection protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// `grpc.reflection.v1`.
    V1,
    /// `grpc.reflection.v1alpha`, for older servers.
    V1Alpha,
}

impl Version {
    fn path(self) -> &'static str {
        match self {
            Version::V1 => "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            Version::V1Alpha => "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        }
    }
}

/// An open reflection stream to the server, and the services it listed.
#[derive(Debug)]
pub struct Reflection {
    version: Version,
    services: Vec<String>,
    requests: mpsc::Sender<ServerReflectionRequest>,
    replies: Streaming<ServerReflectionResponse>,
}

impl Reflection {
    /// Opens reflection (v1, or v1alpha when v1 is UNIMPLEMENTED) and lists
    /// the server's services.
    pub async fn open(client: &Client) -> Result<Reflection, Failure> {
        match Reflection::open_version(client, Version::V1).await {
            Err(status) if status.code() == Code::Unimplemented => {
                tracing::debug!("grpc.reflection.v1 is unimplemented; trying v1alpha");
                match Reflection::open_version(client, Version::V1Alpha).await {
                    Err(status) if status.code() == Code::Unimplemented => {
                        Err(Failure::unusable(format!(
                            "the server at {} offers no server reflection (grpc.reflection.v1 and \
                         v1alpha both answered UNIMPLEMENTED); plexus call needs it to learn the \
                         methods' types",
                            client.url()
                        )))
                    }
                    result => result.map_err(in_reflection),
                }
            }
            result => result.map_err(in_reflection),
        }
    }

    async fn open_version(client: &Client, version: Version) -> Result<Reflection, Status> {
        let (requests, outgoing) = mpsc::channel(1);
        // Queued before the call starts: some servers send their response
        // headers only once the first request has arrived.
        requests
            .try_send(request(MessageRequest::ListServices(String::new())))
            .expect("a new channel has room for one request");
        let mut grpc = Grpc::new(client.channel());
        grpc.ready().await.map_err(|e| {
            Status::unavailable(format!(
                "the connection to {} failed: {}",
                client.url(),
                chain(&*e)
            ))
        })?;
        let call = client.request(ReceiverStream::new(outgoing))?;
        let replies = grpc
            .streaming(
                call,
                PathAndQuery::from_static(version.path()),
                ProstCodec::default(),
            )
            .await?
            .into_inner();
        let mut reflection = Reflection {
            version,
            services: Vec::new(),
            requests,
            replies,
        };
        reflection.services = match reflection.reply().await? {
            MessageResponse::ListServicesResponse(list) => {
                list.service.into_iter().map(|s| s.name).collect()
            }
            _ => {
                return Err(Status::internal(
                    "the server answered list_services with something else",
                ));
            }
        };
        reflection.services.sort();
        tracing::debug!(
            ?version,
            services = reflection.services.len(),
            "reflection open"
        );
        Ok(reflection)
    }

    /// The protocol version the server answered.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The full names of the services the server listed, sorted.
    pub fn services(&self) -> &[String] {
        &self.services
    }

    /// The file declaring `symbol` and every file it imports, transitively,
    /// in a pool that also holds the Google well-known types.
    pub async fn pool_for(&mut self, symbol: &str) -> Result<DescriptorPool, Failure> {
        let mut pool = DescriptorPool::global();
        let mut fetched: HashMap<String, FileDescriptorProto> = HashMap::new();
        let mut wanted: Vec<String> = Vec::new();
        let mut batch = self
            .files(MessageRequest::FileContainingSymbol(symbol.to_owned()))
            .await?;
        loop {
            for file in batch {
                for dependency in &file.dependency {
                    if !fetched.contains_key(dependency)
                        && pool.get_file_by_name(dependency).is_none()
                    {
                        wanted.push(dependency.clone());
                    }
                }
                fetched.insert(file.name().to_owned(), file);
            }
            wanted.retain(|name| !fetched.contains_key(name));
            let Some(next) = wanted.pop() else { break };
            if fetched.len() >= MAX_FILES {
                return Err(Failure::unusable(format!(
                    "{symbol} needs more than {MAX_FILES} proto files; plexus call stops there"
                )));
            }
            batch = self.files(MessageRequest::FileByFilename(next)).await?;
        }
        pool.add_file_descriptor_protos(fetched.into_values())
            .map_err(|e| {
                Failure::unusable(format!(
                    "the proto files the server sent for {symbol} do not fit together: {e}"
                ))
            })?;
        Ok(pool)
    }

    async fn files(&mut self, ask: MessageRequest) -> Result<Vec<FileDescriptorProto>, Failure> {
        let what = match &ask {
            MessageRequest::FileByFilename(name) => format!("file {name}"),
            MessageRequest::FileContainingSymbol(symbol) => format!("the file declaring {symbol}"),
            _ => "a file".to_owned(),
        };
        self.requests.send(request(ask)).await.map_err(|_| {
            Failure::from(Status::unavailable(
                "the server closed the reflection stream",
            ))
        })?;
        match self.reply().await.map_err(in_reflection)? {
            MessageResponse::FileDescriptorResponse(files) => files
                .file_descriptor_proto
                .iter()
                .map(|bytes| {
                    FileDescriptorProto::decode(bytes.as_slice()).map_err(|e| {
                        Failure::unusable(format!(
                            "the server sent {what} in a form that cannot be read: {e}"
                        ))
                    })
                })
                .collect(),
            _ => Err(Failure::unusable(format!(
                "the server answered a request for {what} with something else"
            ))),
        }
    }

    /// The next reply; an error reply becomes its status.
    async fn reply(&mut self) -> Result<MessageResponse, Status> {
        let reply =
            self.replies.message().await?.ok_or_else(|| {
                Status::unavailable("the server ended the reflection stream early")
            })?;
        match reply.message_response {
            Some(MessageResponse::ErrorResponse(error)) => Err(Status::new(
                Code::from_i32(error.error_code),
                error.error_message,
            )),
            Some(response) => Ok(response),
            None => Err(Status::internal(
                "the server sent an empty reflection reply",
            )),
        }
    }
}

fn request(ask: MessageRequest) -> ServerReflectionRequest {
    ServerReflectionRequest {
        host: String::new(),
        message_request: Some(ask),
    }
}

/// A status from the reflection service, marked as such.
fn in_reflection(status: Status) -> Failure {
    Failure::Status(Status::new(
        status.code(),
        format!(
            "{} (while asking the server's reflection service)",
            status.message()
        ),
    ))
}
