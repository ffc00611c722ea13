//! [`WakeGate`]: polls a future again only after it has woken the task.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use futures::task::AtomicWaker;
use pin_project_lite::pin_project;

pin_project! {
    /// Resolves when `inner` does, but polls `inner` only when it has woken
    /// the task since its last poll (or was never polled, or was
    /// [`rearm`](WakeGate::rearm)ed). A connection's task wakes for every
    /// frame it sends or receives; the futures it waits on besides (the
    /// server's stop signal, the keepalive timer) are costly to poll, and
    /// rarely ready.
    pub(super) struct WakeGate<F> {
        #[pin]
        inner: F,
        signal: Arc<Signal>,
        waker: Waker,
        armed: bool,
    }
}

/// Set when `inner` wakes its waker; passes the wake on to the task.
#[derive(Default)]
struct Signal {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl<F> WakeGate<F> {
    pub(super) fn new(inner: F) -> Self {
        let signal = Arc::new(Signal::default());
        WakeGate {
            inner,
            waker: Waker::from(signal.clone()),
            signal,
            armed: false,
        }
    }

    /// The inner future, which will be polled on the next poll: for changes
    /// to it that may make it ready without waking it.
    pub(super) fn rearm(self: Pin<&mut Self>) -> Pin<&mut F> {
        let this = self.project();
        *this.armed = false;
        this.inner
    }
}

impl<F: Future> Future for WakeGate<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        this.signal.task.register(cx.waker());
        if *this.armed && !this.signal.woken.load(Ordering::Acquire) {
            return Poll::Pending;
        }
        *this.armed = true;
        this.signal.woken.store(false, Ordering::Release);
        this.inner.poll(&mut Context::from_waker(this.waker))
    }
}
