//! Trace context: an incoming W3C `traceparent` is continued in the server's
//! `tracing` span and sent on the calls the handler makes, so one request
//! can be followed across hops.

mod support;

use std::sync::{Arc, Mutex};

use plexus_core::TraceContext;
use plexus_rpc::CallContext;
use plexus_rpc::client::{Channel, ClientBuilder};
use plexus_rpc::echo::v1::echo_client::EchoClient;
use plexus_rpc::echo::v1::{EchoReply, EchoRequest};
use support::unary::{Unary, UnaryEcho};
use tokio::sync::OnceCell;
use tonic::{Request, Response, Status};
use tracing_subscriber::layer::{Context, SubscriberExt};

/// What a hop saw: the traceparent that arrived and its own call context trace.
#[derive(Debug, Clone)]
struct Seen {
    received: Option<String>,
    own: TraceContext,
}

#[derive(Clone, Default)]
struct Hop {
    next: Arc<OnceCell<EchoClient<Channel>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

#[tonic::async_trait]
impl Unary for Hop {
    async fn unary(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        let received = request
            .metadata()
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let own = CallContext::from_request(&request).unwrap().trace();
        self.seen.lock().unwrap().push(Seen { received, own });
        if let Some(next) = self.next.get() {
            next.clone().unary(request.into_inner()).await?;
        }
        Ok(Response::new(EchoReply::default()))
    }
}

/// Records the `trace_id` and `span_id` fields of every `rpc.server` span.
#[derive(Clone, Default)]
struct SpanRecorder {
    spans: Arc<Mutex<Vec<(String, String)>>>,
}

#[derive(Default)]
struct Ids {
    trace_id: String,
    span_id: String,
}

impl tracing::field::Visit for Ids {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "trace_id" => self.trace_id = format!("{value:?}"),
            "span_id" => self.span_id = format!("{value:?}"),
            _ => {}
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for SpanRecorder {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _id: &tracing::span::Id,
        _ctx: Context<'_, S>,
    ) {
        if attrs.metadata().name() == "rpc.server" {
            let mut ids = Ids::default();
            attrs.record(&mut ids);
            self.spans.lock().unwrap().push((ids.trace_id, ids.span_id));
        }
    }
}

async fn chain() -> (Vec<Hop>, Vec<plexus_rpc::server::ServerHandle>) {
    let hops = vec![Hop::default(), Hop::default()];
    let mut servers = Vec::new();
    for hop in &hops {
        servers.push(support::start(UnaryEcho(hop.clone())).await);
    }
    let channel = ClientBuilder::new(servers[1].url())
        .connect()
        .await
        .unwrap();
    hops[0].next.set(EchoClient::new(channel)).ok().unwrap();
    (hops, servers)
}

#[tokio::test]
async fn one_trace_id_follows_the_request_across_hops_and_into_tracing_spans_and_bad_ones_restart()
{
    let recorder = SpanRecorder::default();
    let subscriber = tracing_subscriber::registry().with(recorder.clone());
    let _guard = tracing::subscriber::set_default(subscriber);

    let (hops, servers) = chain().await;
    let mut client = support::client(&servers[0]).await;
    let root = TraceContext::new_root();
    CallContext::new(None, root)
        .scope(client.unary(EchoRequest::default()))
        .await
        .unwrap();

    let first = hops[0].seen.lock().unwrap()[0].clone();
    let second = hops[1].seen.lock().unwrap()[0].clone();
    let first_in =
        TraceContext::parse(first.received.as_deref().expect("hop 1 got a traceparent")).unwrap();
    let second_in =
        TraceContext::parse(second.received.as_deref().expect("hop 2 got a traceparent")).unwrap();
    for ctx in [first_in, first.own, second_in, second.own] {
        assert_eq!(
            ctx.trace_id(),
            root.trace_id(),
            "one trace across every hop"
        );
    }
    let span_ids = [
        root.span_id(),
        first_in.span_id(),
        first.own.span_id(),
        second_in.span_id(),
        second.own.span_id(),
    ];
    let distinct: std::collections::HashSet<_> = span_ids.iter().collect();
    assert_eq!(
        distinct.len(),
        span_ids.len(),
        "every hop and call has its own span: {span_ids:?}"
    );

    let spans = recorder.spans.lock().unwrap().clone();
    assert_eq!(spans.len(), 2, "{spans:?}");
    assert_eq!(spans[0], (root.trace_id(), first.own.span_id()));
    assert_eq!(spans[1], (root.trace_id(), second.own.span_id()));

    a_call_without_a_valid_traceparent_starts_a_new_trace().await;
}

/// Not a test of its own: `tracing` caches per-callsite interest, so the
/// span test above must be the only test of this binary that serves calls
/// while another thread may register the same callsite.
async fn a_call_without_a_valid_traceparent_starts_a_new_trace() {
    let hop = Hop::default();
    let server = support::start(UnaryEcho(hop.clone())).await;
    let mut client = support::bare_client(&server).await;
    client.unary(EchoRequest::default()).await.unwrap();
    let mut request = Request::new(EchoRequest::default());
    request
        .metadata_mut()
        .insert("traceparent", "00-not-a-trace-01".parse().unwrap());
    client.unary(request).await.unwrap();
    let seen = hop.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_ne!(
        seen[0].own.trace_id(),
        seen[1].own.trace_id(),
        "each call started its own trace"
    );
    TraceContext::parse(&seen[1].own.to_traceparent()).unwrap();
}
