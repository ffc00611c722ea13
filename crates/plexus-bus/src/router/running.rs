//! [`Running`]: tells when every route of a router has subscribed.

use tokio::sync::watch;

/// Where a router is in its life.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct State {
    /// Routes subscribed so far.
    pub(super) subscribed: usize,
    /// Every route subscribed (stays true once set).
    pub(super) running: bool,
    /// [`Router::run`](super::Router::run) returned.
    pub(super) stopped: bool,
}

/// Why [`Running::wait`] gave up: the router stopped (or was dropped)
/// before all of its routes had subscribed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the router stopped before all of its routes had subscribed ({subscribed} of {routes})")]
pub struct NeverRan {
    /// Routes that had subscribed.
    pub subscribed: usize,
    /// Routes of the router.
    pub routes: usize,
}

/// Resolves once every route of its router has subscribed, so messages
/// published from then on reach the routes even when their groups start
/// at new messages. From [`Router::running`](super::Router::running);
/// clones watch the same router.
#[derive(Debug, Clone)]
pub struct Running {
    state: watch::Receiver<State>,
    routes: usize,
}

impl Running {
    pub(super) fn new(state: watch::Receiver<State>, routes: usize) -> Self {
        Running { state, routes }
    }

    /// Waits until every route has subscribed; an error when the router
    /// stops first (a route could not subscribe, or it was shut down or
    /// dropped before).
    pub async fn wait(&mut self) -> Result<(), NeverRan> {
        let waited = self
            .state
            .wait_for(|s| s.running || s.stopped)
            .await
            .map(|state| *state);
        // An error: the router was dropped without running.
        let state = waited.unwrap_or_else(|_| *self.state.borrow());
        if state.running {
            Ok(())
        } else {
            Err(NeverRan {
                subscribed: state.subscribed,
                routes: self.routes,
            })
        }
    }

    /// Whether every route has subscribed by now.
    pub fn is_running(&self) -> bool {
        self.state.borrow().running
    }
}
