//! [`Routed`]: a plexus Router running on the backend under test, for the
//! scenarios that check the router's guarantees end to end.

use plexus_bus::router::{Router, RouterError};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::Ctx;

/// A running router; dropping it stops the router abruptly.
pub(crate) struct Routed {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), RouterError>>>,
}

impl Routed {
    /// Starts `router` and waits until every route has subscribed, so
    /// what is published next reaches them.
    pub(crate) async fn start(ctx: &Ctx<'_>, router: Router) -> Routed {
        let mut running = router.running();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(router.run(async {
            let _ = stopped.await;
        }));
        let routed = Routed {
            stop: Some(stop),
            task: Some(task),
        };
        if let Err(e) = ctx
            .bounded("the router subscribing its routes", running.wait())
            .await
        {
            ctx.fail(format!("the router did not start: {e}"));
        }
        routed
    }

    /// Shuts the router down and checks it ended without an error.
    pub(crate) async fn stop(mut self, ctx: &Ctx<'_>) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self.task.take().expect("a router is stopped once");
        match ctx.bounded("the router shutting down", task).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => ctx.fail(format!("the router ended with an error: {e}")),
            Err(e) => ctx.fail(format!("the router task failed: {e}")),
        }
    }
}

impl Drop for Routed {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}
