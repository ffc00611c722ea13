//! The test Library service: answers from its request, so the tests can
//! see exactly what the gateway bound, and counts the calls it starts.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::Stream;
use plexus_rpc::CallContext;
use prost::Message as _;
use tonic::{Code, Request, Response, Status};

use super::v1::library_server::Library;
use super::v1::*;

/// A stream of books.
pub type BookStream = Pin<Box<dyn Stream<Item = Result<Book, Status>> + Send>>;

/// The Library service of the tests.
#[derive(Debug, Clone, Default)]
pub struct TestLibrary {
    /// Calls whose handler started.
    pub calls: Arc<AtomicUsize>,
    /// Streams whose producer has stopped (ended, failed or was dropped).
    pub streams_closed: Arc<AtomicUsize>,
}

impl TestLibrary {
    fn called(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

/// `google.rpc.Status`, to attach details to a status.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_types::Any>,
}

#[tonic::async_trait]
impl Library for TestLibrary {
    async fn get_book(&self, request: Request<GetBookRequest>) -> Result<Response<Book>, Status> {
        self.called();
        let r = request.into_inner();
        if r.book_id == "missing" {
            return Err(Status::not_found(format!("book {} not found", r.book_id)));
        }
        Ok(Response::new(Book {
            name: format!("shelves/{}/books/{}", r.shelf, r.book_id),
            title: format!("view {}", r.view),
            tags: vec!["a".into(), "b".into()],
            isbn: 9_007_199_254_740_993,
            ..Book::default()
        }))
    }

    async fn create_book(
        &self,
        request: Request<CreateBookRequest>,
    ) -> Result<Response<Book>, Status> {
        self.called();
        let r = request.into_inner();
        let mut book = r.book.unwrap_or_default();
        book.name = format!("shelves/{}/books/new", r.shelf);
        book.labels.insert("request_id".into(), r.request_id);
        Ok(Response::new(book))
    }

    async fn update_book(
        &self,
        request: Request<UpdateBookRequest>,
    ) -> Result<Response<Book>, Status> {
        self.called();
        let r = request.into_inner();
        let mut book = r.book.unwrap_or_default();
        let mask = r.update_mask.map(|m| m.paths.join(",")).unwrap_or_default();
        book.labels.insert("update_mask".into(), mask);
        Ok(Response::new(book))
    }

    async fn delete_book(
        &self,
        request: Request<DeleteBookRequest>,
    ) -> Result<Response<()>, Status> {
        self.called();
        let name = request.into_inner().name;
        if name.ends_with("/missing") {
            return Err(Status::not_found(format!("{name} not found")));
        }
        Ok(Response::new(()))
    }

    async fn search_books(
        &self,
        request: Request<SearchBooksRequest>,
    ) -> Result<Response<SearchBooksResponse>, Status> {
        self.called();
        Ok(Response::new(SearchBooksResponse {
            echo: Some(request.into_inner()),
            books: Vec::new(),
        }))
    }

    async fn get_file(&self, request: Request<GetFileRequest>) -> Result<Response<File>, Status> {
        self.called();
        Ok(Response::new(File {
            path: request.into_inner().path,
        }))
    }

    async fn fail(&self, request: Request<FailRequest>) -> Result<Response<FailResponse>, Status> {
        self.called();
        let r = request.into_inner();
        if r.code == 0 {
            return Ok(Response::new(FailResponse { message: r.message }));
        }
        let code = Code::from(r.code);
        if r.message == "with details" {
            let author = Author {
                name: "detail".into(),
                born: 1900,
            };
            let details = RpcStatus {
                code: r.code,
                message: r.message.clone(),
                details: vec![
                    prost_types::Any {
                        type_url: "type.googleapis.com/plexus.gateway.test.v1.Author".into(),
                        value: author.encode_to_vec(),
                    },
                    prost_types::Any {
                        type_url: "type.googleapis.com/unknown.Type".into(),
                        value: vec![1, 2, 3],
                    },
                ],
            };
            return Err(Status::with_details(
                code,
                r.message,
                details.encode_to_vec().into(),
            ));
        }
        Err(Status::new(code, r.message))
    }

    async fn inspect(
        &self,
        request: Request<InspectRequest>,
    ) -> Result<Response<InspectResponse>, Status> {
        self.called();
        let ctx = CallContext::from_request(&request).cloned();
        let deadline = ctx.as_ref().and_then(CallContext::deadline);
        let traceparent = request
            .metadata()
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let reply = InspectResponse {
            has_deadline: deadline.is_some(),
            remaining_millis: deadline.map_or(0, |d| d.remaining().as_millis() as u64),
            traceparent,
            trace_id: ctx.map(|c| c.trace().trace_id()).unwrap_or_default(),
        };
        let sleep = request.get_ref().sleep_millis;
        if sleep > 0 {
            tokio::time::sleep(Duration::from_millis(u64::from(sleep))).await;
        }
        Ok(Response::new(reply))
    }

    type WatchShelfStream = BookStream;

    async fn watch_shelf(
        &self,
        request: Request<WatchShelfRequest>,
    ) -> Result<Response<BookStream>, Status> {
        self.called();
        let r = request.into_inner();
        if r.shelf == "missing" {
            return Err(Status::not_found("shelf missing not found"));
        }
        let closed = Arc::clone(&self.streams_closed);
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            for i in 0..r.count {
                if r.fail_after != 0 && i == r.fail_after {
                    let _ = tx
                        .send(Err(Status::aborted("the shelf was reorganised")))
                        .await;
                    break;
                }
                if r.interval_millis > 0 && i > 0 {
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(u64::from(r.interval_millis))) => {}
                        () = tx.closed() => break,
                    }
                }
                let book = Book {
                    name: format!("shelves/{}/books/{i}", r.shelf),
                    pages: i as i32,
                    ..Book::default()
                };
                if tx.send(Ok(book)).await.is_err() {
                    break;
                }
            }
            closed.fetch_add(1, Ordering::SeqCst);
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn ping(&self, _: Request<PingRequest>) -> Result<Response<PingResponse>, Status> {
        self.called();
        Ok(Response::new(PingResponse {
            pong: "pong".into(),
        }))
    }

    async fn hidden(&self, _: Request<PingRequest>) -> Result<Response<PingResponse>, Status> {
        self.called();
        Ok(Response::new(PingResponse::default()))
    }
}
