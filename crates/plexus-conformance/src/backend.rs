//! [`Backend`]: what a backend's `tests/conformance.rs` hands the suite.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use plexus_core::bus::{BoxFuture, BusError, Features, Publisher, Subscriber};

use crate::ForeignClient;

type Make<T> = Arc<dyn Fn() -> BoxFuture<'static, Result<Arc<T>, BusError>> + Send + Sync>;
type Hook = Arc<dyn Fn() -> BoxFuture<'static, Result<(), BusError>> + Send + Sync>;

/// A backend under test: how to make its publishers and subscribers,
/// what it guarantees, and the hooks some scenarios need.
///
/// Every publisher or subscriber a scenario asks it for may be a new
/// handle (a new
/// connection, as another process would); all of them reach the same
/// topics.
#[derive(Clone)]
pub struct Backend {
    name: String,
    features: Features,
    publisher: Make<dyn Publisher>,
    subscriber: Make<dyn Subscriber>,
    one_handle: bool,
    reopen: Option<Hook>,
    restart_broker: Option<Hook>,
    foreign: Option<Arc<dyn ForeignClient>>,
    crash_child: Option<ChildCommand>,
    patience: Duration,
    unavailable: Option<String>,
}

type ChildCommand = Arc<dyn Fn() -> std::process::Command + Send + Sync>;

impl Backend {
    /// A backend named `name` (used in every message of the suite)
    /// guaranteeing `features`, whose publishers and subscribers come from
    /// the two constructors.
    pub fn new<P, S, PF, SF>(
        name: impl Into<String>,
        features: Features,
        publisher: impl Fn() -> PF + Send + Sync + 'static,
        subscriber: impl Fn() -> SF + Send + Sync + 'static,
    ) -> Self
    where
        P: Publisher,
        S: Subscriber,
        PF: Future<Output = Result<P, BusError>> + Send + 'static,
        SF: Future<Output = Result<S, BusError>> + Send + 'static,
    {
        Backend {
            name: name.into(),
            features,
            publisher: Arc::new(move || {
                let made = publisher();
                Box::pin(async move { made.await.map(|p| Arc::new(p) as Arc<dyn Publisher>) })
            }),
            subscriber: Arc::new(move || {
                let made = subscriber();
                Box::pin(async move { made.await.map(|s| Arc::new(s) as Arc<dyn Subscriber>) })
            }),
            one_handle: false,
            reopen: None,
            restart_broker: None,
            foreign: None,
            crash_child: None,
            patience: Duration::from_secs(30),
            unavailable: None,
        }
    }

    /// A backend whose one handle is both publisher and subscriber (the
    /// in-memory bus): every constructor call returns a clone of `bus`, and
    /// closing any of them closes all. Scenarios that close a publisher
    /// while subscribers still read then close it only once they are done.
    pub fn one_handle<B>(name: impl Into<String>, bus: B) -> Self
    where
        B: Publisher + Subscriber + Clone,
    {
        let features = Publisher::features(&bus);
        let for_subscribers = bus.clone();
        let mut backend = Backend::new(
            name,
            features,
            move || std::future::ready(Ok(bus.clone())),
            move || std::future::ready(Ok(for_subscribers.clone())),
        );
        backend.one_handle = true;
        backend
    }

    /// A backend that cannot be tested here (its service is unreachable):
    /// every scenario prints `reason` and skips, or fails when the
    /// environment variable `CI` is `true`.
    pub fn unavailable(name: impl Into<String>, reason: impl Into<String>) -> Self {
        let name = name.into();
        let reason = reason.into();
        let refuse = {
            let (name, reason) = (name.clone(), reason.clone());
            move || BusError::backend(name.clone(), reason.clone())
        };
        let refuse_too = refuse.clone();
        Backend {
            name,
            features: Features::default(),
            publisher: Arc::new(move || Box::pin(std::future::ready(Err(refuse())))),
            subscriber: Arc::new(move || Box::pin(std::future::ready(Err(refuse_too())))),
            one_handle: false,
            reopen: None,
            restart_broker: None,
            foreign: None,
            crash_child: None,
            patience: Duration::from_secs(30),
            unavailable: Some(reason),
        }
    }

    /// For persistent backends: stops the backend and starts it again
    /// from its stored state (say, closes and reopens the database file),
    /// as a process restart would. Publishers and subscribers made after
    /// it returns use the reopened backend. Enables
    /// `durable_across_restart`.
    pub fn reopen<F>(mut self, reopen: impl Fn() -> F + Send + Sync + 'static) -> Self
    where
        F: Future<Output = Result<(), BusError>> + Send + 'static,
    {
        self.reopen = Some(Arc::new(move || Box::pin(reopen())));
        self
    }

    /// For broker backends: restarts the broker (the handles stay open and
    /// must reconnect). For the reconnect scenario.
    pub fn restart_broker<F>(mut self, restart: impl Fn() -> F + Send + Sync + 'static) -> Self
    where
        F: Future<Output = Result<(), BusError>> + Send + 'static,
    {
        self.restart_broker = Some(Arc::new(move || Box::pin(restart())));
        self
    }

    /// For persistent backends with a reopen hook: the command starting a
    /// child process that runs [`crash_child`](crate::crash_child) with
    /// this backend's storage (say, this test binary running an ignored
    /// test that does). `durable_across_restart` then also kills such a
    /// child with SIGKILL mid-stream and checks what it acknowledged.
    pub fn crash_child(
        mut self,
        command: impl Fn() -> std::process::Command + Send + Sync + 'static,
    ) -> Self {
        self.crash_child = Some(Arc::new(command));
        self
    }

    /// The command starting a crash child, if the backend gives one.
    pub fn crash_child_command(&self) -> Option<std::process::Command> {
        self.crash_child.as_ref().map(|command| command())
    }

    /// For broker backends: a client of the broker in another language.
    /// Enables `cloudevents_interop`.
    pub fn foreign_client(mut self, client: impl ForeignClient) -> Self {
        self.foreign = Some(Arc::new(client));
        self
    }

    /// The longest any single wait of a scenario lasts before it fails
    /// (default 30 s); raise it for slow brokers.
    pub fn patience(mut self, bound: Duration) -> Self {
        self.patience = bound;
        self
    }

    /// The backend's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the backend guarantees.
    pub fn features(&self) -> &Features {
        &self.features
    }

    /// Whether publisher and subscriber are one handle (see
    /// [`Backend::one_handle`]).
    pub fn is_one_handle(&self) -> bool {
        self.one_handle
    }

    /// The longest single wait.
    pub fn patience_bound(&self) -> Duration {
        self.patience
    }

    /// Why the backend cannot be tested, if it cannot.
    pub fn unavailable_reason(&self) -> Option<&str> {
        self.unavailable.as_deref()
    }

    /// A publisher (possibly a new connection).
    pub async fn make_publisher(&self) -> Result<Arc<dyn Publisher>, BusError> {
        (self.publisher)().await
    }

    /// A subscriber (possibly a new connection).
    pub async fn make_subscriber(&self) -> Result<Arc<dyn Subscriber>, BusError> {
        (self.subscriber)().await
    }

    /// Runs the reopen hook; `None` when the backend has none.
    pub async fn run_reopen(&self) -> Option<Result<(), BusError>> {
        match &self.reopen {
            Some(hook) => Some(hook().await),
            None => None,
        }
    }

    /// Whether a reopen hook was given.
    pub fn can_reopen(&self) -> bool {
        self.reopen.is_some()
    }

    /// Whether a broker restart hook was given.
    pub fn can_restart_broker(&self) -> bool {
        self.restart_broker.is_some()
    }

    /// The client in another language, if one was given.
    pub fn foreign(&self) -> Option<&Arc<dyn ForeignClient>> {
        self.foreign.as_ref()
    }

    /// Runs the broker restart hook; `None` when the backend has none.
    pub async fn run_restart_broker(&self) -> Option<Result<(), BusError>> {
        match &self.restart_broker {
            Some(hook) => Some(hook().await),
            None => None,
        }
    }
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backend")
            .field("name", &self.name)
            .field("features", &self.features)
            .field("one_handle", &self.one_handle)
            .field("reopen", &self.reopen.is_some())
            .field("restart_broker", &self.restart_broker.is_some())
            .field("foreign", &self.foreign.as_ref().map(|f| f.name()))
            .field("patience", &self.patience)
            .field("unavailable", &self.unavailable)
            .finish_non_exhaustive()
    }
}
