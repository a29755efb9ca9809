//! The worker pool: claims due runs with a lease and executes them.
//!
//! One dispatcher claims as many runs as there are free worker slots (a
//! semaphore bounds concurrency), spawns each on the engine's task tracker,
//! and sleeps until intake commits new runs, a run it put back comes due
//! ([`DueTimes`]), or the poll interval passes (which also picks up runs
//! whose lease expired on a dead node). A renewer extends
//! this node's leases while its runs execute. A run accepted while a worker
//! is free, or while few runs wait for one, does not go through the queue at
//! all: see [`LocalWorkers`].

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use patchbay_store::{Clock, IntakeLease, NewRun, Run, RunId, RunStatus, Store};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::warn;

use crate::due::DueTimes;
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

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    fn snapshot(&self) -> Vec<RunId> {
        self.lock().iter().copied().collect()
    }
}

/// This node's workers as intake sees them. A run accepted while a worker
/// is free skips the queue: intake commits it already leased to this node
/// (as a claim would leave it), and it is handed to that worker in memory,
/// with no claim statement and no dispatcher round. Should the node die, the
/// run is resumed elsewhere once its lease expires, like any claimed run.
///
/// A run accepted while every worker is busy is committed leased all the
/// same, as long as fewer than [`LocalWorkers::backlog`]'s bound wait: it
/// waits in memory for the next worker to come free, which the dispatcher
/// gives it before claiming anything. Without that, a synchronous caller's
/// next request often arrived while the worker of its previous run was
/// still committing that run's end, and a third of the runs at 64
/// connections went through the queue and a claim.
#[derive(Clone)]
pub(crate) struct LocalWorkers {
    /// Shared with the dispatcher: a worker reserved here is one fewer run
    /// it claims.
    pub slots: Arc<Semaphore>,
    /// Runs committed leased to this node, waiting for a worker.
    pub backlog: Backlog,
    /// Wakes the dispatcher when a run joins the backlog.
    pub wake: Arc<Notify>,
    pub executor: Arc<arc_swap::ArcSwap<Executor>>,
    pub active: ActiveRuns,
    pub tracker: TaskTracker,
    pub owner: String,
    pub lease: Duration,
    pub clock: Arc<dyn Clock>,
    pub shutdown: CancellationToken,
}

/// Where a run about to be committed leased to this node will execute.
pub(crate) enum Reserved {
    /// On this free worker.
    Worker(OwnedSemaphorePermit),
    /// On the next worker to come free; the permit is its place in the
    /// backlog.
    Backlog(OwnedSemaphorePermit),
}

/// Runs committed leased to this node while every worker was busy, in
/// arrival order, each with its place (a permit of a semaphore as large as
/// the number of workers, so at most that many wait).
#[derive(Clone)]
pub(crate) struct Backlog {
    places: Arc<Semaphore>,
    // A std mutex: held for a push or a pop, never across an await.
    runs: Arc<Mutex<VecDeque<Waiting>>>,
}

/// A run in the backlog, since when, and its place.
struct Waiting {
    run: Run,
    since: tokio::time::Instant,
    _place: OwnedSemaphorePermit,
}

/// A run that waited longer than this is read back from the store before
/// it starts (an operator may have cancelled it meanwhile). A shorter wait
/// is treated as a run handed over at once, whose first step a cancellation
/// does not stop either. Reading every waiting run back would put a store
/// read before a third of the runs at 64 connections.
const RECHECK_AFTER: Duration = Duration::from_millis(50);

impl Backlog {
    pub fn new(places: usize) -> Backlog {
        Backlog {
            places: Arc::new(Semaphore::new(places)),
            runs: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Waiting>> {
        self.runs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, run: Run, place: OwnedSemaphorePermit) {
        self.lock().push_back(Waiting {
            run,
            since: tokio::time::Instant::now(),
            _place: place,
        });
    }

    /// The longest-waiting run, and whether it waited long enough to be
    /// read back before it starts; its place frees as it leaves.
    fn pop(&self) -> Option<(Run, bool)> {
        self.lock()
            .pop_front()
            .map(|waiting| (waiting.run, waiting.since.elapsed() > RECHECK_AFTER))
    }
}

impl LocalWorkers {
    /// Reserves a free worker, or else a place in the backlog, for a run
    /// about to be committed, with the lease to commit it with; `None` when
    /// every worker is busy and the backlog is full, or the node stops.
    pub fn reserve(&self) -> Option<(Reserved, IntakeLease)> {
        if self.shutdown.is_cancelled() {
            return None;
        }
        let reserved = match self.slots.clone().try_acquire_owned() {
            Ok(permit) => Reserved::Worker(permit),
            Err(_) => Reserved::Backlog(self.backlog.places.clone().try_acquire_owned().ok()?),
        };
        let lease = IntakeLease {
            owner: self.owner.clone(),
            duration: self.lease,
            starts_now: matches!(reserved, Reserved::Worker(_)),
        };
        Some((reserved, lease))
    }

    /// Executes `run`, just committed with the lease [`LocalWorkers::reserve`]
    /// gave, on the worker reserved for it or the next one to come free.
    pub fn hand(&self, run: NewRun, reserved: Reserved) {
        let Some(run) = run.into_leased(self.clock.now()) else {
            // Committed queued: a claim will find it.
            return;
        };
        crate::events::RunHandedOver { flow: &run.flow }.emit();
        match reserved {
            Reserved::Worker(permit) => {
                execute(&self.executor, &self.active, &self.tracker, run, permit);
            }
            Reserved::Backlog(place) => {
                // Its lease is renewed while it waits, as while it runs.
                self.active.insert(run.id);
                self.backlog.push(run, place);
                self.wake.notify_one();
            }
        }
    }
}

/// Executes a run this node holds the lease of, on the worker `permit`.
fn execute(
    executor: &arc_swap::ArcSwap<Executor>,
    active: &ActiveRuns,
    tracker: &TaskTracker,
    run: Run,
    permit: OwnedSemaphorePermit,
) {
    let executor = executor.load_full();
    let active = active.clone();
    let id = run.id;
    active.insert(id);
    tracker.spawn(async move {
        executor.execute(run).await;
        active.remove(id);
        drop(permit);
    });
}

pub(crate) struct WorkerPool {
    /// The same workers intake hands runs to: one semaphore of free
    /// workers, the executor of the configuration in force (each run keeps
    /// the one current when it was claimed), this node's leases.
    pub workers: LocalWorkers,
    pub store: Arc<dyn Store>,
    pub poll_interval: Duration,
    pub wake: Arc<Notify>,
    /// When runs this node put back come due.
    pub due: DueTimes,
}

impl WorkerPool {
    pub async fn dispatch(self) {
        let LocalWorkers {
            slots,
            executor,
            active,
            tracker,
            owner,
            lease,
            shutdown,
            ..
        } = &self.workers;
        loop {
            let first = tokio::select! {
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => return,
                },
                () = shutdown.cancelled() => return,
            };
            // Runs committed to this node come before the queue.
            if let Some((run, recheck)) = self.workers.backlog.pop() {
                if recheck {
                    self.execute_waited(run, first);
                } else {
                    execute(executor, active, tracker, run, first);
                }
                continue;
            }
            // Half of the free workers at most join the claim: the permits
            // are held until the claim returns, and a run accepted
            // meanwhile must still find a free worker here rather than wait
            // in the backlog (where, not yet started, its claim is not
            // counted: a run that stops the node would get one stop more
            // before it is declared a poison run).
            let batch = CLAIM_BATCH.min(1 + slots.available_permits() / 2);
            let mut permits = vec![first];
            while permits.len() < batch {
                match slots.clone().try_acquire_owned() {
                    Ok(permit) => permits.push(permit),
                    Err(_) => break,
                }
            }
            let wanted = permits.len();
            let runs = match self.store.claim(owner, wanted as u32, *lease).await {
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
                execute(executor, active, tracker, run, permit);
            }
            drop(permits);
            if claimed < wanted && !self.idle().await {
                return;
            }
        }
    }

    /// Executes a run that waited long in the backlog, unless it stopped
    /// being this node's meanwhile (an operator cancelled it): its first
    /// step must not run for a run that was cancelled while it waited.
    fn execute_waited(&self, run: Run, permit: OwnedSemaphorePermit) {
        let LocalWorkers {
            executor,
            active,
            tracker,
            owner,
            ..
        } = &self.workers;
        let store = self.store.clone();
        let owner = owner.clone();
        let workers = (executor.clone(), active.clone(), tracker.clone());
        tracker.spawn(async move {
            let (executor, active, tracker) = workers;
            let held = match store.run(run.id).await {
                Ok(Some(stored)) => {
                    stored.status == RunStatus::Running
                        && stored.lease_owner.as_deref() == Some(owner.as_str())
                }
                Ok(None) => false,
                Err(e) => {
                    // Left leased: renewal stops with it off the active
                    // list, so it is resumed once the lease expires.
                    warn!(error = %e, run = %run.id, "cannot check a waiting run");
                    false
                }
            };
            if held {
                execute(&executor, &active, &tracker, run, permit);
            } else {
                active.remove(run.id);
            }
        });
    }

    /// Waits for new work; false when shutting down.
    async fn idle(&self) -> bool {
        tokio::select! {
            () = self.wake.notified() => true,
            () = self.due.sleep_until(tokio::time::Instant::now() + self.poll_interval) => true,
            () = self.workers.shutdown.cancelled() => false,
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
