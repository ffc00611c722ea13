//! Cancellation: when a client cancels or drops a call — unary or any kind of
//! stream — the server-side handler is stopped within 100 ms.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use plexus_rpc::CallContext;
use plexus_rpc::echo::ReplyStream;
use plexus_rpc::echo::v1::echo_server::Echo;
use plexus_rpc::echo::v1::{EchoReply, EchoRequest, StreamRequest};
use tonic::{Request, Response, Status, Streaming};

/// When a handler (or the work it spawned) started, and when it was stopped.
#[derive(Clone, Default)]
struct Journal {
    started: Arc<Mutex<Option<Instant>>>,
    stopped: Arc<Mutex<Option<Instant>>>,
}

impl Journal {
    fn start(&self) -> StopRecorder {
        *self.started.lock().unwrap() = Some(Instant::now());
        StopRecorder(self.stopped.clone())
    }

    fn started(&self) -> bool {
        self.started.lock().unwrap().is_some()
    }

    fn stopped_at(&self) -> Option<Instant> {
        *self.stopped.lock().unwrap()
    }
}

/// Records the instant it is dropped: the moment the waiting work was stopped.
struct StopRecorder(Arc<Mutex<Option<Instant>>>);

impl Drop for StopRecorder {
    fn drop(&mut self) {
        *self.0.lock().unwrap() = Some(Instant::now());
    }
}

/// Every method waits forever (until the call is cancelled).
#[derive(Clone, Default)]
struct Forever {
    journal: Journal,
}

impl Forever {
    /// A reply stream fed by spawned work that waits forever; the work is
    /// tied to the call through `CallContext::spawn`.
    fn waiting_stream<T>(&self, request: &Request<T>) -> Result<ReplyStream, Status> {
        let ctx = CallContext::from_request(request)
            .cloned()
            .ok_or_else(|| Status::internal("no call context"))?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<EchoReply, Status>>(1);
        let recorder = self.journal.start();
        ctx.spawn(async move {
            let _recorder = recorder;
            let _tx = tx;
            std::future::pending::<()>().await;
        });
        Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
    }
}

#[tonic::async_trait]
impl Echo for Forever {
    async fn unary(&self, _request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        let _recorder = self.journal.start();
        std::future::pending::<()>().await;
        unreachable!("the handler waits until it is cancelled")
    }

    type ServerStreamStream = ReplyStream;
    async fn server_stream(
        &self,
        request: Request<StreamRequest>,
    ) -> Result<Response<ReplyStream>, Status> {
        self.waiting_stream(&request).map(Response::new)
    }

    async fn client_stream(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<EchoReply>, Status> {
        let _recorder = self.journal.start();
        let mut inbound = request.into_inner();
        while inbound.message().await?.is_some() {}
        Err(Status::internal(
            "the client ended its stream; this test never does",
        ))
    }

    type BidiStream = ReplyStream;
    async fn bidi(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<ReplyStream>, Status> {
        self.waiting_stream(&request).map(Response::new)
    }
}

/// Starts `call` on a task, waits for the handler to start, drops the call,
/// and returns how long the server took to stop the handler.
async fn cancel_after_start<F>(journal: &Journal, call: F) -> Duration
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let task = tokio::spawn(call);
    assert!(
        support::wait_until(Duration::from_secs(5), || journal.started()).await,
        "the handler never started"
    );
    let cancelled_at = Instant::now();
    task.abort();
    let _ = task.await;
    assert!(
        support::wait_until(Duration::from_secs(2), || journal.stopped_at().is_some()).await,
        "the handler was never stopped after the client cancelled"
    );
    journal
        .stopped_at()
        .unwrap()
        .saturating_duration_since(cancelled_at)
}

const BOUND: Duration = Duration::from_millis(100);

#[tokio::test]
async fn dropping_a_unary_call_cancels_its_handler() {
    let service = Forever::default();
    let server = support::start(service.clone()).await;
    let mut client = support::client(&server).await;
    let took = cancel_after_start(&service.journal, async move {
        client.unary(EchoRequest::default()).await
    })
    .await;
    assert!(took < BOUND, "handler stopped {took:?} after the cancel");
}

#[tokio::test]
async fn dropping_a_server_stream_cancels_its_producer() {
    let service = Forever::default();
    let server = support::start(service.clone()).await;
    let mut client = support::client(&server).await;
    let took = cancel_after_start(&service.journal, async move {
        let mut stream = client
            .server_stream(StreamRequest::default())
            .await?
            .into_inner();
        stream.message().await
    })
    .await;
    assert!(took < BOUND, "producer stopped {took:?} after the cancel");
}

#[tokio::test]
async fn dropping_a_client_stream_cancels_its_handler() {
    let service = Forever::default();
    let server = support::start(service.clone()).await;
    let mut client = support::client(&server).await;
    let took = cancel_after_start(&service.journal, async move {
        let requests =
            futures::stream::iter(vec![EchoRequest::default()]).chain(futures::stream::pending());
        client.client_stream(requests).await
    })
    .await;
    assert!(took < BOUND, "handler stopped {took:?} after the cancel");
}

#[tokio::test]
async fn dropping_a_bidi_stream_cancels_its_producer() {
    let service = Forever::default();
    let server = support::start(service.clone()).await;
    let mut client = support::client(&server).await;
    let took = cancel_after_start(&service.journal, async move {
        let requests = futures::stream::pending::<EchoRequest>();
        let mut stream = client.bidi(requests).await?.into_inner();
        stream.message().await
    })
    .await;
    assert!(took < BOUND, "producer stopped {took:?} after the cancel");
}

#[tokio::test]
async fn a_client_that_disconnects_cancels_its_calls() {
    let service = Forever::default();
    let server = support::start(service.clone()).await;
    let client = support::client(&server).await;
    let took = cancel_after_start(&service.journal, async move {
        let mut client = client;
        let mut stream = client
            .server_stream(StreamRequest::default())
            .await?
            .into_inner();
        stream.message().await
    })
    .await;
    // The channel (and so the connection) was dropped with the task.
    assert!(
        took < BOUND,
        "producer stopped {took:?} after the disconnect"
    );
}

use futures::StreamExt as _;
