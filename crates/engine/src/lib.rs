//! Patchbay's engine: the path of an event from trigger to finished run.
//!
//! ```text
//! trigger ──▶ intake ──▶ store ──▶ worker ──▶ executor ──▶ step ──▶ connector
//! (server,    (group     (queue)   (claim      (journal     (call,
//!  scheduler,  commit)              with a      each step)   transform, ...)
//!  invoke)                          lease)
//! ```
//!
//! - [`Build`] loads, validates and builds a project: what `check` reports
//!   on and what `run` serves;
//! - [`plan`] compiles a project's flows (every jq expression, once, and
//!   each webhook's verifier);
//! - [`intake`] commits accepted events as runs, batching concurrent ones;
//! - [`worker`] claims due runs with a lease and renews it;
//! - [`executor`] runs a flow's steps, journalling each, resuming from the
//!   journal after a crash;
//! - [`step`] holds the step kinds, one file each; [`failure`] types why a
//!   step failed; `trigger` compiles each trigger kind, one file each;
//! - trigger kinds that start runs by themselves (a `schedule`) run their
//!   source task on nodes with the scheduler role;
//! - [`retention`] deletes finished runs older than `store.retention`, and
//!   audit entries older than `store.audit_retention`;
//! - [`audit`] writes the management API's audit entries;
//! - [`operate`] cancels runs and replays dead letters for operators;
//! - [`redaction`] keeps credentials out of the journal and run records;
//! - `events` writes each notable event's log line and metrics, and
//!   `sampler` samples the queue for the queue gauges.
//!
//! Engine time (due times of waits and run retries, journal times,
//! retention cutoffs) is read from the [`Clock`] in [`EngineOptions`], the
//! one the store was opened with: wall time in production, tokio's clock
//! in tests (see [`patchbay_store::Clock`]).
//!
//! The engine knows nothing of HTTP servers or status codes: the server
//! crate turns [`EngineError`]s into responses.

#![forbid(unsafe_code)]

mod alerts;
mod audit;
mod build;
pub mod caps;
pub mod cluster;
mod context;
pub mod contracts;
mod drift;
mod due;
mod error;
pub mod evaluate;
mod events;
mod executor;
pub mod failure;
pub mod impact;
pub mod intake;
mod live;
mod operate;
pub mod plan;
pub mod redaction;
mod responders;
mod retention;
mod sampler;
pub mod step;
#[cfg(test)]
mod test_support;
mod tokens;
pub mod trigger;
mod verify;
mod versions;
mod worker;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;

use patchbay_config::{EngineConfig, Project};
use patchbay_connector::Connectors;
pub use patchbay_store::{Clock, SystemClock, TokioClock};
use patchbay_store::{EnqueueOutcome, NewRun, Run, RunId, Secrets, Store};
use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

pub use audit::AuditLog;
pub use build::Build;
pub use cluster::Membership;
pub use context::QUERY_KEY;
pub use error::EngineError;
pub use evaluate::{Evaluator, Limits};
pub use intake::Intake;
pub use live::{LoadedProject, ProjectSource, Reloaded};
pub use operate::ReplaySelection;
pub use plan::{FlowPlan, Plan, TriggerPlan, WebhookPlan};
pub use responders::SyncReply;
pub use verify::VerifyPlan;
pub use versions::VersionError;

use crate::executor::Executor;
use crate::live::Live;
use crate::responders::Responders;
use crate::worker::{LocalWorkers, WorkerPool};

/// Which parts of the engine run on this node. One binary serves every role.
#[derive(Clone, Copy, Debug)]
pub struct Roles {
    /// Claim and execute runs.
    pub workers: bool,
    /// Run the sources of triggers that start runs by themselves (fire
    /// `schedule` triggers).
    pub scheduler: bool,
    /// Fire alert flows (`event` triggers) on what this node sees: the
    /// runs that die here, this node's circuit breakers. Off where runs
    /// are one-offs (`patchbay invoke`, flow tests).
    pub alerts: bool,
}

impl Default for Roles {
    fn default() -> Self {
        Roles {
            workers: true,
            scheduler: true,
            alerts: true,
        }
    }
}

/// What an engine starts with besides its [`Build`].
pub struct EngineOptions {
    pub roles: Roles,
    /// The store's secrets: the management API writes secrets with them,
    /// and rotated OAuth 2.0 refresh tokens are sealed with their master
    /// key. Without them, rotated tokens are kept in memory only.
    pub secrets: Option<Secrets>,
    /// Where [`Engine::reload`] loads the project again from; without one,
    /// the configuration cannot be reloaded.
    pub reload: Option<ReloadFrom>,
    /// Where the engine reads the current time: [`SystemClock`] for a
    /// node, [`TokioClock`] for tests under paused time. It should be the
    /// store's clock, which compares the due times the engine sets.
    pub clock: Arc<dyn Clock>,
}

/// The source a node reloads its project from.
pub struct ReloadFrom {
    pub source: Arc<dyn ProjectSource>,
    /// What the source reports for the secrets the build was loaded with,
    /// so a reload that changes nothing is a no-op.
    pub secrets_digest: String,
}

/// An event handed to the engine by a trigger.
#[derive(Clone, Debug)]
pub struct Event {
    pub flow: String,
    /// `webhook`, `schedule` or `manual`.
    pub trigger: &'static str,
    pub input: Value,
    /// Request headers (lowercased names) for webhooks; `{}` otherwise.
    pub headers: Value,
    pub dedupe_key: Option<String>,
}

/// A running engine. Cheap to clone; every clone is the same engine.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    /// The configuration in force; swapped whole by [`Engine::reload`].
    live: ArcSwap<Live>,
    /// The executor workers hand new runs to, when this node runs workers;
    /// swapped with `live`.
    executor: Option<Arc<ArcSwap<Executor>>>,
    /// This node's workers, when it runs them: events accepted while one is
    /// free skip the queue.
    local: Option<LocalWorkers>,
    /// This node among those sharing the store.
    membership: Membership,
    store: Arc<dyn Store>,
    intake: Intake,
    responders: Responders,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    roles: Roles,
    /// Cancels the schedule tasks of the configuration in force. A std
    /// mutex: held only to swap the token, never across an `.await`.
    schedules: Mutex<CancellationToken>,
    /// Serialises reloads.
    reloading: tokio::sync::Mutex<()>,
    source: Option<Arc<dyn ProjectSource>>,
    /// Also given to the token stores of the connectors, which seal rotated
    /// refresh tokens with its master key.
    secrets: Option<Secrets>,
    audit: AuditLog,
    /// The engine's clock (see [`EngineOptions::clock`]), for what starts
    /// after [`Engine::start`]: the executors and live configurations of
    /// reloads, and schedules once they read it.
    clock: Arc<dyn Clock>,
    /// Where breakers and runs raise alert events.
    alerts: alerts::AlertSender,
    /// The plan whose `event` flows alert events fire, and its connectors;
    /// swapped on reload.
    alert_scope: Arc<ArcSwap<alerts::AlertScope>>,
}

/// The engine's background tasks; [`EngineTasks::stopped`] drains them.
pub struct EngineTasks {
    tracker: TaskTracker,
    renewer: CancellationToken,
    store: Arc<dyn Store>,
    owner: String,
    grace: Duration,
    shutdown: CancellationToken,
}

impl Engine {
    /// Starts intake, workers and scheduler (as `options.roles` says) for
    /// `build`, which `check` built too. Its connectors get a token store
    /// over `store`. Cancelling `shutdown` stops the engine.
    pub fn start(
        build: Build,
        store: Arc<dyn Store>,
        options: EngineOptions,
        shutdown: CancellationToken,
    ) -> Result<(Engine, EngineTasks), EngineError> {
        let Build {
            project,
            plan,
            connectors,
            warnings: _,
        } = build;
        let EngineOptions {
            roles,
            secrets,
            reload,
            clock,
        } = options;
        let plan = Arc::new(plan);
        let owner = format!("node-{}", uuid::Uuid::now_v7());
        attach_store(&connectors, &store, secrets.as_ref(), &owner, &clock);
        connectors.publish_gauges();
        let settings: &EngineConfig = &project.config.engine;
        let membership = Membership::new(owner.clone(), clock.now());
        let wake = Arc::new(Notify::new());
        if roles.workers {
            // Runs another node queued, released or made due wake this
            // node's workers at once, not at their next poll.
            let woken = wake.clone();
            store.on_ready(Arc::new(move || woken.notify_one()));
        }
        let intake = Intake::start(store.clone(), settings.intake_batch, wake.clone());
        let responders = Responders::default();
        let tracker = TaskTracker::new();
        let renewer = CancellationToken::new();
        let alert_scope = Arc::new(ArcSwap::from_pointee(alerts::AlertScope {
            plan: plan.clone(),
            connectors: connectors.clone(),
        }));
        let (alerts, alert_dispatcher) = alerts::channel(
            alert_scope.clone(),
            intake.clone(),
            clock.clone(),
            shutdown.clone(),
        );
        if roles.alerts {
            tracker.spawn(alert_dispatcher.run());
            connectors.set_breaker_watch(Arc::new(alerts.clone()));
        }

        let (source, secrets_digest) = match reload {
            Some(reload) => (Some(reload.source), reload.secrets_digest),
            None => (None, String::new()),
        };
        let live = Live {
            plan: plan.clone(),
            connectors: connectors.clone(),
            secrets_digest,
            loaded_at: clock.now(),
        };
        let versions = Arc::new(versions::Versions::new(&project.dir, plan.clone()));
        save_version(store.clone(), &project);
        let mut swappable_executor = None;
        let mut local = None;
        let drift = drift::DriftLog::default();
        tracker.spawn(
            drift
                .clone()
                .write_until(store.clone(), alerts.clone(), shutdown.clone()),
        );
        if roles.workers {
            let evaluator =
                Evaluator::start(plan.expression_limits).map_err(EngineError::EvaluatorStart)?;
            let due = due::DueTimes::new(clock.clone());
            let executor = Arc::new(ArcSwap::from_pointee(Executor {
                plan: plan.clone(),
                connectors,
                store: store.clone(),
                owner: owner.clone(),
                responders: responders.clone(),
                shutdown: shutdown.clone(),
                evaluator,
                wake: wake.clone(),
                due: due.clone(),
                versions,
                clock: clock.clone(),
                held: Default::default(),
                drift: drift.clone(),
                alerts: alerts.clone(),
            }));
            swappable_executor = Some(executor.clone());
            let active = worker::ActiveRuns::default();
            let workers = LocalWorkers {
                slots: Arc::new(tokio::sync::Semaphore::new(settings.workers)),
                backlog: worker::Backlog::new(settings.workers),
                wake: wake.clone(),
                executor,
                active: active.clone(),
                tracker: tracker.clone(),
                owner: owner.clone(),
                lease: settings.lease.0,
                clock: clock.clone(),
                shutdown: shutdown.clone(),
            };
            local = Some(workers.clone());
            let pool = WorkerPool {
                workers,
                store: store.clone(),
                poll_interval: settings.poll_interval.0,
                wake,
                due,
            };
            tracker.spawn(pool.dispatch());
            tokio::spawn(worker::renew_leases(
                store.clone(),
                owner.clone(),
                active,
                settings.lease.0,
                renewer.clone(),
            ));
        }
        let retention = project.config.store.retention.0;
        let audit_retention = project.config.store.audit_retention.0;
        if roles.workers && !(retention.is_zero() && audit_retention.is_zero()) {
            let janitor = retention::Janitor {
                store: store.clone(),
                membership: membership.clone(),
                retention,
                audit_retention,
                shutdown: shutdown.clone(),
                clock: clock.clone(),
            };
            tracker.spawn(janitor.run());
        }
        let (audit, audit_writer) = AuditLog::start(store.clone(), shutdown.clone(), clock.clone());
        tracker.spawn(audit_writer);
        tracker.spawn(
            sampler::QueueSampler {
                store: store.clone(),
                interval: sampler::SAMPLE_INTERVAL,
                shutdown: shutdown.clone(),
                clock: clock.clone(),
            }
            .run(),
        );
        let schedules = shutdown.child_token();
        if roles.scheduler {
            let exclusive = store.is_shared().then_some(&membership);
            let services = SourceServices {
                intake: &intake,
                clock: &clock,
                connectors: &live.connectors,
                store: &store,
            };
            spawn_sources(&plan, &services, &tracker, &schedules, exclusive);
        }
        info!(flows = plan.flows.len(), version = %plan.version, node = %owner, "engine started");
        let engine = Engine {
            inner: Arc::new(Inner {
                live: ArcSwap::from_pointee(live),
                executor: swappable_executor,
                local,
                membership: membership.clone(),
                store: store.clone(),
                intake,
                responders,
                shutdown: shutdown.clone(),
                tracker: tracker.clone(),
                roles,
                schedules: Mutex::new(schedules),
                reloading: tokio::sync::Mutex::new(()),
                source,
                secrets,
                audit,
                clock,
                alerts,
                alert_scope,
            }),
        };
        // The heartbeat reads the engine's live state, so it starts once
        // the engine exists; it holds it weakly, not to keep it alive.
        let weak = Arc::downgrade(&engine.inner);
        let busy = Arc::downgrade(&engine.inner);
        let reloading = Arc::downgrade(&engine.inner);
        tracker.spawn(
            cluster::Heartbeat {
                membership,
                store: store.clone(),
                config_version: Box::new(move || {
                    weak.upgrade()
                        .map(|inner| inner.live.load().plan.version.clone())
                        .unwrap_or_default()
                }),
                hold_open: store.is_shared().then(|| {
                    let weak = Arc::downgrade(&engine.inner);
                    Box::new(move |connector: &str, open_for: Duration| {
                        if let Some(inner) = weak.upgrade() {
                            inner
                                .live
                                .load()
                                .connectors
                                .open_breaker_as_elsewhere(connector, open_for);
                        }
                    }) as cluster::HoldOpen
                }),
                reload: Box::new(move || {
                    let engine = reloading.upgrade().map(|inner| Engine { inner });
                    Box::pin(async move {
                        match engine {
                            Some(engine) => engine.reload_here().await.map(Some),
                            None => Ok(None),
                        }
                    })
                }),
                in_flight: Box::new(move || {
                    busy.upgrade()
                        .and_then(|inner| inner.local.as_ref().map(|local| local.active.len()))
                        .map_or(0, |runs| u64::try_from(runs).unwrap_or(u64::MAX))
                }),
                clock: engine.inner.clock.clone(),
                shutdown: shutdown.clone(),
            }
            .run(),
        );
        let tasks = EngineTasks {
            tracker,
            renewer,
            store,
            owner,
            grace: settings.shutdown_grace.0,
            shutdown,
        };
        Ok((engine, tasks))
    }

    /// The plan in force. A reload swaps it: hold the `Arc` for one
    /// request, do not keep it.
    pub fn plan(&self) -> Arc<Plan> {
        self.inner.live.load().plan.clone()
    }

    /// Where the management API records its audit entries.
    pub fn audit(&self) -> &AuditLog {
        &self.inner.audit
    }

    /// The connectors in force (see [`Engine::plan`]).
    pub fn connectors(&self) -> Connectors {
        self.inner.live.load().connectors.clone()
    }

    /// When the configuration in force was loaded.
    pub fn loaded_at(&self) -> chrono::DateTime<chrono::Utc> {
        self.inner.live.load().loaded_at
    }

    /// The secrets store, when the node has one.
    pub fn secrets(&self) -> Option<&Secrets> {
        self.inner.secrets.as_ref()
    }

    /// Why the store cannot be trusted with new work, if it cannot: for
    /// `/healthz` (see [`patchbay_store::StoreFault`]).
    pub fn store_fault(&self) -> Option<patchbay_store::StoreFault> {
        self.inner.store.fault()
    }

    /// Loads the configuration again and, when it is valid and differs,
    /// swaps it in. Runs in progress keep the configuration they started
    /// with; new events and newly claimed runs get the new one.
    pub async fn reload(&self) -> Result<Reloaded, EngineError> {
        let reloaded = self.reload_here().await?;
        // The other nodes sharing the store follow (see `cluster`), even
        // when the version is the same: the secrets may have changed.
        let node = self.inner.membership.node_id();
        if let Err(e) = self
            .inner
            .store
            .publish_config(&reloaded.version, node)
            .await
        {
            warn!(error = %e, "reloaded, but the other nodes were not told to");
        }
        Ok(reloaded)
    }

    /// Reloads this node alone: what a node does when another published a
    /// reload.
    pub(crate) async fn reload_here(&self) -> Result<Reloaded, EngineError> {
        let reloaded = self.swap_in_reloaded().await;
        // Building the new connectors set their gauges, whether or not they
        // were swapped in: the gauges go back to those in service.
        self.connectors().publish_gauges();
        reloaded
    }

    async fn swap_in_reloaded(&self) -> Result<Reloaded, EngineError> {
        let source = self
            .inner
            .source
            .clone()
            .ok_or(EngineError::ReloadUnsupported)?;
        let _one_at_a_time = self.inner.reloading.lock().await;
        let loaded = source.load().await.map_err(EngineError::InvalidConfig)?;
        let current = self.inner.live.load_full();
        let previous = current.plan.version.clone();
        if loaded.build.plan.version == previous && loaded.secrets_digest == current.secrets_digest
        {
            return Ok(Reloaded {
                version: previous.clone(),
                previous,
                changed: false,
            });
        }
        let Build {
            project,
            plan,
            connectors,
            warnings: _,
        } = loaded.build;
        let plan = Arc::new(plan);
        // Kept before any run can be created on it, so that the run can
        // finish on it after the next reload or restart.
        self.inner
            .store
            .save_config_version(&plan.version, &versions::Versions::sources(&project))
            .await?;
        attach_store(
            &connectors,
            &self.inner.store,
            self.inner.secrets.as_ref(),
            self.inner.membership.node_id(),
            &self.inner.clock,
        );
        connectors.carry_over_from(&current.connectors);
        if let Some(executor) = &self.inner.executor {
            let old = executor.load();
            // The pool's threads are kept unless the budgets changed.
            let evaluator = if old.evaluator.limits() == &plan.expression_limits {
                old.evaluator.clone()
            } else {
                Evaluator::start(plan.expression_limits).map_err(EngineError::EvaluatorStart)?
            };
            executor.store(Arc::new(Executor {
                plan: plan.clone(),
                connectors: connectors.clone(),
                store: old.store.clone(),
                owner: old.owner.clone(),
                responders: old.responders.clone(),
                shutdown: old.shutdown.clone(),
                evaluator,
                wake: old.wake.clone(),
                due: old.due.clone(),
                versions: {
                    old.versions.insert(plan.clone());
                    old.versions.clone()
                },
                clock: old.clock.clone(),
                held: Default::default(),
                drift: old.drift.clone(),
                alerts: old.alerts.clone(),
            }));
        }
        if self.inner.roles.alerts {
            connectors.set_breaker_watch(Arc::new(self.inner.alerts.clone()));
        }
        self.inner.alert_scope.store(Arc::new(alerts::AlertScope {
            plan: plan.clone(),
            connectors: connectors.clone(),
        }));
        self.inner.live.store(Arc::new(Live {
            plan: plan.clone(),
            connectors,
            secrets_digest: loaded.secrets_digest,
            loaded_at: self.inner.clock.now(),
        }));
        if self.inner.roles.scheduler {
            let fresh = self.inner.shutdown.child_token();
            let stale = std::mem::replace(
                &mut *self
                    .inner
                    .schedules
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner),
                fresh.clone(),
            );
            stale.cancel();
            let live = self.inner.live.load();
            let services = SourceServices {
                intake: &self.inner.intake,
                clock: &self.inner.clock,
                connectors: &live.connectors,
                store: &self.inner.store,
            };
            spawn_sources(
                &plan,
                &services,
                &self.inner.tracker,
                &fresh,
                self.inner
                    .store
                    .is_shared()
                    .then_some(&self.inner.membership),
            );
        }
        info!(version = %plan.version, previous = %previous, flows = plan.flows.len(), "configuration reloaded");
        Ok(Reloaded {
            version: plan.version.clone(),
            previous,
            changed: true,
        })
    }

    /// This node's identity and standing among the nodes sharing its store.
    pub fn membership(&self) -> &Membership {
        &self.inner.membership
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Commits an event as a run; returns once it is durable.
    pub async fn trigger(&self, event: Event) -> Result<EnqueueOutcome, EngineError> {
        let run = self.new_run(event)?;
        self.commit(run).await
    }

    /// Commits a new run. While one of this node's workers is free, or few
    /// runs wait for one, the run is committed leased to this node and
    /// handed over in memory, skipping the queue and its claim; otherwise it
    /// is queued for whichever node claims it first.
    async fn commit(&self, mut run: NewRun) -> Result<EnqueueOutcome, EngineError> {
        let Some((local, (reserved, lease))) = self
            .inner
            .local
            .as_ref()
            .and_then(|local| Some((local, local.reserve()?)))
        else {
            return self.inner.intake.submit(run).await;
        };
        run.lease = Some(lease);
        let (outcome, run) = self.inner.intake.commit(run).await?;
        if let EnqueueOutcome::Created(_) = outcome {
            local.hand(run, reserved);
        }
        Ok(outcome)
    }

    /// Commits an event and waits up to `timeout` for the run's `respond`
    /// step (or its end). `None` as the reply means the wait timed out; the
    /// run goes on.
    pub async fn trigger_and_wait(
        &self,
        event: Event,
        timeout: Duration,
    ) -> Result<(EnqueueOutcome, Option<SyncReply>), EngineError> {
        let run = self.new_run(event)?;
        let id = run.id;
        let waiter = self.inner.responders.register(id);
        let outcome = match self.commit(run).await {
            Ok(outcome) => outcome,
            Err(e) => {
                self.inner.responders.forget(id);
                return Err(e);
            }
        };
        if let EnqueueOutcome::Duplicate(_) = outcome {
            self.inner.responders.forget(id);
            return Ok((outcome, None));
        }
        let reply = tokio::time::timeout(timeout, waiter)
            .await
            .ok()
            .and_then(Result::ok);
        self.inner.responders.forget(id);
        Ok((outcome, reply))
    }

    /// Polls the store until the run has finished or `timeout` passes;
    /// returns the run as last seen.
    pub async fn wait_for(
        &self,
        run: RunId,
        timeout: Duration,
    ) -> Result<Option<Run>, EngineError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let current = self.inner.store.run(run).await?;
            let done = current.as_ref().is_none_or(|r| r.status.is_final());
            if done || tokio::time::Instant::now() >= deadline {
                return Ok(current);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn new_run(&self, event: Event) -> Result<NewRun, EngineError> {
        if self.inner.shutdown.is_cancelled() {
            return Err(EngineError::ShuttingDown);
        }
        let plan = self.plan();
        if !plan.flows.contains_key(&event.flow) {
            return Err(EngineError::unknown_flow(&event.flow, &plan));
        }
        let mut event = event;
        plan.redaction.headers.redact(&mut event.headers);
        Ok(NewRun {
            id: uuid::Uuid::now_v7(),
            flow: event.flow,
            trigger: event.trigger.to_string(),
            input: event.input,
            headers: event.headers,
            config_version: plan.version.clone(),
            dedupe_key: event.dedupe_key,
            parent: None,
            lease: None,
        })
    }
}

impl EngineTasks {
    /// Waits for shutdown to be requested, lets running steps finish within
    /// the grace period, then gives this node's unfinished runs back to the
    /// queue so they resume at once elsewhere or after restart.
    pub async fn stopped(self) {
        self.shutdown.cancelled().await;
        self.tracker.close();
        if tokio::time::timeout(self.grace, self.tracker.wait())
            .await
            .is_err()
        {
            warn!(
                grace_ms = self.grace.as_millis() as u64,
                "steps still running after the grace period; they will be resumed"
            );
        }
        self.renewer.cancel();
        match self.store.release(&self.owner).await {
            Ok(0) => {}
            Ok(released) => info!(released, "unfinished runs returned to the queue"),
            Err(e) => warn!(error = %e, "cannot release leases; runs resume when they expire"),
        }
    }
}

/// Keeps the refresh tokens the connectors' OAuth 2.0 servers rotate in
/// `store`, sealed with `secrets` when there are any; on a store nodes
/// share, the connectors' rate limits, `max_in_flight` slots and breaker
/// openings too, so they hold for the cluster.
fn attach_store(
    connectors: &Connectors,
    store: &Arc<dyn Store>,
    secrets: Option<&Secrets>,
    node: &str,
    clock: &Arc<dyn Clock>,
) {
    connectors.set_token_store(Arc::new(tokens::StoredTokens {
        store: store.clone(),
        secrets: secrets.cloned(),
        node: node.to_string(),
    }));
    if store.is_shared() {
        connectors.set_shared_rate(Arc::new(cluster::StoreRate {
            store: store.clone(),
        }));
        connectors.set_shared_slots(Arc::new(cluster::StoreSlots {
            store: store.clone(),
            node: node.to_string(),
            taken: std::sync::atomic::AtomicU64::new(0),
        }));
        connectors.set_shared_breakers(Arc::new(cluster::StoreBreakers {
            store: store.clone(),
            node: node.to_string(),
            clock: clock.clone(),
        }));
    }
}

/// What every source task of a plan is given, besides its flow.
struct SourceServices<'a> {
    intake: &'a Intake,
    clock: &'a Arc<dyn Clock>,
    connectors: &'a Connectors,
    store: &'a Arc<dyn Store>,
}

/// Starts the source task of every trigger of `plan` that has one (a
/// `schedule`, a poll, a broker subscription), until `stop`; `exclusive` is
/// the node's membership when several nodes share the store.
fn spawn_sources(
    plan: &Plan,
    services: &SourceServices<'_>,
    tracker: &TaskTracker,
    stop: &CancellationToken,
    exclusive: Option<&Membership>,
) {
    for flow in plan.flows.values() {
        let cx = trigger::SourceContext {
            flow: flow.name.clone(),
            config_version: plan.version.clone(),
            intake: services.intake.clone(),
            clock: services.clock.clone(),
            connectors: services.connectors.clone(),
            store: services.store.clone(),
            shutdown: stop.clone(),
            exclusive: exclusive.cloned(),
        };
        if let Some(source) = flow.trigger.source(cx) {
            tracker.spawn(source);
        }
    }
}

/// Keeps the version a node starts with in the store, in the background:
/// starting is not async, and runs of this version only need it after the
/// next reload or restart.
fn save_version(store: Arc<dyn Store>, project: &Project) {
    let version = project.version.clone();
    let sources = versions::Versions::sources(project);
    tokio::spawn(async move {
        if let Err(e) = store.save_config_version(&version, &sources).await {
            warn!(error = %e, version, "configuration version not kept in the store");
        }
    });
}
