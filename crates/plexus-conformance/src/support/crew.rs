//! [`Crew`]: the tasks of a scenario (subscription members, publishers)
//! and the shared record they keep, with a bounded wait on it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::Ctx;

/// Tasks sharing a record of type `T`. Dropping the crew aborts its
/// tasks, so none outlives the scenario.
pub(crate) struct Crew<T> {
    tasks: JoinSet<Result<(), String>>,
    record: Arc<watch::Sender<T>>,
}

impl<T: Send + Sync + 'static> Crew<T> {
    pub(crate) fn new(initial: T) -> Self {
        Crew {
            tasks: JoinSet::new(),
            record: Arc::new(watch::Sender::new(initial)),
        }
    }

    /// The record, for a task to update with `send_modify`.
    pub(crate) fn record(&self) -> Arc<watch::Sender<T>> {
        Arc::clone(&self.record)
    }

    /// Starts a task; an `Err` it returns fails the scenario at the next
    /// [`until`](Self::until).
    pub(crate) fn spawn(
        &mut self,
        task: impl Future<Output = Result<(), String>> + Send + 'static,
    ) {
        self.tasks.spawn(task);
    }

    /// Reads the record.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        f(&self.record.borrow())
    }

    /// Waits until `done` holds for the record, at most the scenario's
    /// patience; fails with `waiting_for` and `describe(record)` when it
    /// does not, or as soon as a task fails or panics.
    pub(crate) async fn until(
        &mut self,
        ctx: &Ctx<'_>,
        waiting_for: &str,
        mut done: impl FnMut(&T) -> bool,
        describe: impl Fn(&T) -> String,
    ) {
        self.until_within(ctx, ctx.patience(), waiting_for, &mut done, &describe)
            .await
    }

    /// [`until`](Self::until) with an explicit bound.
    pub(crate) async fn until_within(
        &mut self,
        ctx: &Ctx<'_>,
        bound: Duration,
        waiting_for: &str,
        done: impl FnMut(&T) -> bool,
        describe: impl Fn(&T) -> String,
    ) {
        if !self.happens_within(ctx, bound, waiting_for, done).await {
            let state = describe(&self.record.borrow());
            ctx.fail(format!(
                "{waiting_for}: not reached within {bound:?}; {state}"
            ));
        }
    }

    /// Watches the record for `window` after a scenario's goal was
    /// reached: fails with `describe(record)` if `wrong` comes to hold in
    /// it (a late duplicate, say), as soon as it does. Only a watch of
    /// some length can show that something did not happen; the window
    /// is the scenario's to choose.
    pub(crate) async fn stays_clear(
        &mut self,
        ctx: &Ctx<'_>,
        window: Duration,
        what: &str,
        wrong: impl FnMut(&T) -> bool,
        describe: impl Fn(&T) -> String,
    ) {
        if self.happens_within(ctx, window, what, wrong).await {
            let state = describe(&self.record.borrow());
            ctx.fail(format!("{what}: {state}"));
        }
    }

    /// Whether `done` comes to hold for the record within `bound`; fails
    /// as soon as a task fails or panics.
    async fn happens_within(
        &mut self,
        ctx: &Ctx<'_>,
        bound: Duration,
        waiting_for: &str,
        mut done: impl FnMut(&T) -> bool,
    ) -> bool {
        let give_up = tokio::time::Instant::now() + bound;
        let mut watcher = self.record.subscribe();
        loop {
            tokio::select! {
                reached = watcher.wait_for(&mut done) => {
                    if reached.is_ok() {
                        return true;
                    }
                }
                Some(finished) = self.tasks.join_next() => match finished {
                    Ok(Ok(())) => continue,
                    Ok(Err(problem)) => ctx.fail(format!("{problem} (while waiting for {waiting_for})")),
                    Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                    Err(e) => ctx.fail(format!("a task of the scenario was cancelled: {e}")),
                },
                () = tokio::time::sleep_until(give_up) => return false,
            }
        }
    }

    /// Waits for every task to finish (at most the patience bound),
    /// failing on the first that failed or panicked.
    pub(crate) async fn join(&mut self, ctx: &Ctx<'_>, what: &str) {
        let give_up = tokio::time::Instant::now() + ctx.patience();
        loop {
            let next = tokio::time::timeout_at(give_up, self.tasks.join_next()).await;
            match next {
                Err(_) => ctx.fail(format!(
                    "{what}: {} tasks still running after {:?}",
                    self.tasks.len(),
                    ctx.patience()
                )),
                Ok(None) => return,
                Ok(Some(Ok(Ok(())))) => {}
                Ok(Some(Ok(Err(problem)))) => ctx.fail(format!("{what}: {problem}")),
                Ok(Some(Err(e))) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Ok(Some(Err(e))) => ctx.fail(format!("{what}: a task was cancelled: {e}")),
            }
        }
    }
}
