//! [`Timer`]: hyper's timer on tokio, with sleeps that are cheap to poll.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use pin_project_lite::pin_project;

use super::wake_gate::WakeGate;

/// The timer of the server's HTTP/2 connections. hyper polls the keepalive
/// sleep every time a connection's task wakes; this timer's sleeps poll
/// tokio's only when it has fired or been reset.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Timer;

pin_project! {
    /// A tokio sleep behind a [`WakeGate`].
    struct Sleep {
        #[pin]
        inner: WakeGate<tokio::time::Sleep>,
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.project().inner.poll(cx)
    }
}

impl hyper::rt::Sleep for Sleep {}

impl Sleep {
    fn until(deadline: Instant) -> Self {
        Sleep {
            inner: WakeGate::new(tokio::time::sleep_until(deadline.into())),
        }
    }
}

impl hyper::rt::Timer for Timer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(Sleep {
            inner: WakeGate::new(tokio::time::sleep(duration)),
        })
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(Sleep::until(deadline))
    }

    fn now(&self) -> Instant {
        // tokio's clock, which tests can pause, as hyper-util's timer does.
        tokio::time::Instant::now().into()
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<Sleep>() {
            Some(ours) => ours.project().inner.rearm().reset(new_deadline.into()),
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}
