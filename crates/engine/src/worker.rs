//! The worker pool: claims due runs with a lease and executes them.
//!
//! One dispatcher claims as many runs as there are free worker slots (a
//! semaphore bounds concurrency), spawns each on the engine's task tracker,
//! and sleeps until intake commits new runs or the poll interval passes (which
//! also picks up runs whose lease expired on a dead node). A renewer extends
//! this node's leases while its runs execute.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use patchbay_store::{RunId, Store};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::warn;

use crate::executor::Executor;

/// Most runs claimed in one query.
const CLAIM_BATCH: usize = 64;

/// Runs this node is executing; only their leases are renewed, so a run
/// whose execution halted (store failure) expires and is resumed elsewhere.
#[derive(Clone, Default)]
pub(crate) struct ActiveRuns {
    // A std mutex: held for an insert, a remove or a copy, never across an await.
    runs: Arc<Mutex<HashSet<RunId>>>,
}

impl ActiveRuns {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<RunId>> {
        self.runs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn insert(&self, run: RunId) {
        self.lock().insert(run);
    }

    fn remove(&self, run: RunId) {
        self.lock().remove(&run);
    }

    fn snapshot(&self) -> Vec<RunId> {
        self.lock().iter().copied().collect()
    }
}

pub(crate) struct WorkerPool {
    /// The executor of the configuration in force; each run keeps the one
    /// current when it was claimed.
    pub executor: Arc<arc_swap::ArcSwap<Executor>>,
    pub store: Arc<dyn Store>,
    pub owner: String,
    pub slots: usize,
    pub lease: Duration,
    pub poll_interval: Duration,
    pub wake: Arc<Notify>,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
    pub active: ActiveRuns,
}

impl WorkerPool {
    pub async fn dispatch(self) {
        let slots = Arc::new(Semaphore::new(self.slots));
        loop {
            let first = tokio::select! {
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => return,
                },
                () = self.shutdown.cancelled() => return,
            };
            let mut permits = vec![first];
            while permits.len() < CLAIM_BATCH {
                match slots.clone().try_acquire_owned() {
                    Ok(permit) => permits.push(permit),
                    Err(_) => break,
                }
            }
            let wanted = permits.len();
            let runs = match self
                .store
                .claim(&self.owner, wanted as u32, self.lease)
                .await
            {
                Ok(runs) => runs,
                Err(e) => {
                    warn!(error = %e, "cannot claim runs");
                    drop(permits);
                    self.idle().await;
                    continue;
                }
            };
            let claimed = runs.len();
            for (run, permit) in runs.into_iter().zip(permits.drain(..)) {
                let executor = self.executor.load_full();
                let active = self.active.clone();
                let id = run.id;
                active.insert(id);
                self.tracker.spawn(async move {
                    executor.execute(run).await;
                    active.remove(id);
                    drop(permit);
                });
            }
            drop(permits);
            if claimed < wanted && !self.idle().await {
                return;
            }
        }
    }

    /// Waits for new work; false when shutting down.
    async fn idle(&self) -> bool {
        tokio::select! {
            () = self.wake.notified() => true,
            () = tokio::time::sleep(self.poll_interval) => true,
            () = self.shutdown.cancelled() => false,
        }
    }
}

/// Extends the leases of the runs in `active` every third of the lease until `stop`.
pub(crate) async fn renew_leases(
    store: Arc<dyn Store>,
    owner: String,
    active: ActiveRuns,
    lease: Duration,
    stop: CancellationToken,
) {
    let mut interval = tokio::time::interval(lease / 3);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {
                let runs = active.snapshot();
                if let Err(e) = store.renew_leases(&owner, &runs, lease).await {
                    warn!(error = %e, "cannot renew leases");
                }
            }
            () = stop.cancelled() => return,
        }
    }
}
