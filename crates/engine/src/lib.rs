//! Patchbay's engine: the path of an event from trigger to finished run.
//!
//! ```text
//! trigger ──▶ intake ──▶ store ──▶ worker ──▶ executor ──▶ step ──▶ connector
//! (server,    (group     (queue)   (claim      (journal     (call,
//!  scheduler,  commit)              with a      each step)   transform, ...)
//!  invoke)                          lease)
//! ```
//!
//! - [`plan`] compiles a project's flows (every jq expression, once);
//! - [`intake`] commits accepted events as runs, batching concurrent ones;
//! - [`worker`] claims due runs with a lease and renews it;
//! - [`executor`] runs a flow's steps, journalling each, resuming from the
//!   journal after a crash;
//! - [`scheduler`] fires `schedule` triggers;
//! - [`retention`] deletes finished runs older than `store.retention`.
//!
//! The engine knows nothing of HTTP servers or status codes: the server
//! crate turns [`EngineError`]s into responses.

mod context;
mod error;
mod executor;
pub mod intake;
pub mod plan;
mod responders;
mod retention;
mod scheduler;
mod tokens;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use patchbay_config::{EngineConfig, Env, Project};
use patchbay_connector::Connectors;
use patchbay_store::{EnqueueOutcome, NewRun, Run, RunId, Store};
use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

pub use error::EngineError;
pub use intake::Intake;
pub use plan::{FlowPlan, Plan, TriggerPlan, WebhookPlan};
pub use plan::{VerifyPlan, WebhookSecretError};
pub use responders::SyncReply;

use crate::executor::Executor;
use crate::responders::Responders;
use crate::scheduler::Schedule;
use crate::worker::WorkerPool;

/// Which parts of the engine run on this node. One binary serves every role.
#[derive(Clone, Copy, Debug)]
pub struct Roles {
    /// Claim and execute runs.
    pub workers: bool,
    /// Fire `schedule` triggers.
    pub scheduler: bool,
}

impl Default for Roles {
    fn default() -> Self {
        Roles {
            workers: true,
            scheduler: true,
        }
    }
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
    plan: Arc<Plan>,
    store: Arc<dyn Store>,
    intake: Intake,
    responders: Responders,
    shutdown: CancellationToken,
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
    /// Builds the project's connectors and starts intake, workers and
    /// scheduler (as `roles` says) for `plan`, compiled from `project` by
    /// [`Plan::compile`] (which `check` runs too, so it is not done twice).
    /// Nothing starts if a connector fails to build. Cancelling `shutdown`
    /// stops the engine.
    pub fn start(
        project: &Project,
        plan: Plan,
        store: Arc<dyn Store>,
        env: &dyn Env,
        roles: Roles,
        shutdown: CancellationToken,
    ) -> Result<(Engine, EngineTasks), EngineError> {
        let mut plan = plan;
        plan.resolve_secrets(env)?;
        let plan = Arc::new(plan);
        let connectors = Connectors::build(&project.config.connectors, env)?;
        connectors.set_token_store(Arc::new(tokens::StoredTokens {
            store: store.clone(),
        }));
        let settings: &EngineConfig = &project.config.engine;
        let owner = format!("node-{}", uuid::Uuid::now_v7());
        let wake = Arc::new(Notify::new());
        let intake = Intake::start(store.clone(), settings.intake_batch, wake.clone());
        let responders = Responders::default();
        let tracker = TaskTracker::new();
        let renewer = CancellationToken::new();

        if roles.workers {
            let executor = Arc::new(Executor {
                plan: plan.clone(),
                connectors,
                store: store.clone(),
                owner: owner.clone(),
                responders: responders.clone(),
                shutdown: shutdown.clone(),
            });
            let active = worker::ActiveRuns::default();
            let pool = WorkerPool {
                executor,
                store: store.clone(),
                owner: owner.clone(),
                slots: settings.workers,
                lease: settings.lease.0,
                poll_interval: settings.poll_interval.0,
                wake,
                shutdown: shutdown.clone(),
                tracker: tracker.clone(),
                active: active.clone(),
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
        if roles.workers && !retention.is_zero() {
            let janitor = retention::Janitor {
                store: store.clone(),
                retention,
                shutdown: shutdown.clone(),
            };
            tracker.spawn(janitor.run());
        }
        if roles.scheduler {
            for flow in plan.flows.values() {
                if let TriggerPlan::Schedule { cron, timezone } = &flow.trigger {
                    let schedule = Schedule {
                        flow: flow.name.clone(),
                        cron: (**cron).clone(),
                        timezone: *timezone,
                        config_version: plan.version.clone(),
                    };
                    tracker.spawn(schedule.run(intake.clone(), shutdown.clone()));
                }
            }
        }
        info!(flows = plan.flows.len(), version = %plan.version, node = %owner, "engine started");
        let engine = Engine {
            inner: Arc::new(Inner {
                plan,
                store: store.clone(),
                intake,
                responders,
                shutdown: shutdown.clone(),
            }),
        };
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

    pub fn plan(&self) -> &Plan {
        &self.inner.plan
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The flow and webhook settings for a path, if a flow listens there.
    pub fn webhook(&self, path: &str) -> Option<(&FlowPlan, &WebhookPlan)> {
        self.inner.plan.webhook(path)
    }

    /// Commits an event as a run; returns once it is durable.
    pub async fn trigger(&self, event: Event) -> Result<EnqueueOutcome, EngineError> {
        let run = self.new_run(event)?;
        self.inner.intake.submit(run).await
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
        let outcome = match self.inner.intake.submit(run).await {
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
        if !self.inner.plan.flows.contains_key(&event.flow) {
            return Err(EngineError::UnknownFlow(event.flow));
        }
        Ok(NewRun {
            id: uuid::Uuid::now_v7(),
            flow: event.flow,
            trigger: event.trigger.to_string(),
            input: event.input,
            headers: event.headers,
            config_version: self.inner.plan.version.clone(),
            dedupe_key: event.dedupe_key,
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
