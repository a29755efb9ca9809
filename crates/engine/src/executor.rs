//! The executor: runs one claimed run through its flow's steps.
//!
//! Each step's result is journalled before the next step starts. A run that
//! was interrupted (crash, shutdown) is resumed from its journal: completed
//! steps, and completed items of a `for_each`, are not executed again; their
//! recorded outputs are reused, and steer the run as they did the first time
//! (a `switch` enters the branch it chose, a `wait` waits for the instant it
//! recorded). A step is the unit of progress, so at most the one step in
//! flight when a node died is repeated.
//!
//! What a step does is its kind's business ([`crate::step`]); everything
//! around it is here and the same for every kind: `when`, `for_each`, the
//! error policies, size caps, journalling and masking.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryStreamExt};
use patchbay_connector::Connectors;
use patchbay_expr::{EvalError, Expr, Vars};
use patchbay_store::{
    Claim, Clock, JournalEntry, Run, RunId, RunOutcome, RunStatus, StepStatus, Store, StoreError,
};
use serde_json::Value;
// tokio's `Instant` rather than std's: it is std's unless time is paused,
// and under paused time a step's duration then agrees with its start time,
// which comes from the engine's clock.
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::context::RunContext;
use crate::evaluate::Evaluator;
use crate::events::{
    PoisonRunStopped, RunFinished, RunRescheduled, RunStarted, StepFinished, StepOutcome,
};
use crate::failure::{StepError, type_name};
use crate::plan::{ErrorPolicy, Plan, StepPlan};
use crate::responders::{Responders, SyncReply};
use crate::step::{Performed, Steer, StepContext};

/// Journal entries of completed steps, by (step index, step id, item). The
/// id tells a step from its fallback and branch steps, which share its
/// position.
type Completed = HashMap<(u32, String, Option<u32>), Done>;

/// A journalled step that need not run again.
#[derive(Clone, Debug)]
enum Done {
    Succeeded(Value),
    /// Its `when` was false.
    Skipped,
}

/// Why execution stopped without finishing the run.
#[derive(Debug)]
enum Halt {
    /// Shutdown began; the run is released and resumed later.
    Interrupted,
    /// The store failed (or the lease was lost); the lease will expire and
    /// the run be resumed.
    Store(StoreError),
}

impl From<StoreError> for Halt {
    fn from(e: StoreError) -> Self {
        Halt::Store(e)
    }
}

/// How a step (or a sequence of steps) ended.
enum StepEnd {
    Continue(Value),
    /// A filter was false: the run ends as skipped.
    EndRun,
    /// The run waits until then, holding no worker.
    Suspend(chrono::DateTime<Utc>),
    /// The run waits for this child run to end.
    Await(RunId),
    Failed(StepError),
    /// A step inside it (in a branch) failed the run.
    Aborted(RunFailure),
}

/// Why a run failed.
#[derive(Debug)]
enum RunFailure {
    Step {
        step: String,
        kind: &'static str,
        error: StepError,
        /// `on_error: fail` asks for no run-level retries.
        retry: bool,
        /// The step's own retry schedule, in place of the flow's.
        schedule: Option<Arc<[std::time::Duration]>>,
    },
    /// Earlier claims never reached the end of a step.
    Poison {
        stops: u32,
        limit: u32,
    },
    FlowGone(String),
    /// The run's output exceeds its cap.
    OutputTooLarge(String),
    /// The version the run was created on cannot be executed.
    Version(crate::versions::VersionError),
}

impl RunFailure {
    fn message(&self) -> String {
        match self {
            RunFailure::Step {
                step, kind, error, ..
            } => format!("step `{step}` ({kind}): {error}"),
            RunFailure::Poison { stops, limit } => format!(
                "the run stopped the node {stops} times before reaching the end of a step; \
                 it is not resumed again (engine.max_claims_without_progress: {limit})"
            ),
            RunFailure::FlowGone(flow) => {
                format!("flow `{flow}` no longer exists in the configuration")
            }
            RunFailure::OutputTooLarge(message) => message.clone(),
            RunFailure::Version(e) => e.to_string(),
        }
    }

    fn is_transient(&self) -> bool {
        match self {
            RunFailure::Step { error, retry, .. } => *retry && error.is_transient(),
            RunFailure::Version(crate::versions::VersionError::Store { source, .. }) => {
                source.is_transient()
            }
            RunFailure::Poison { .. }
            | RunFailure::FlowGone(_)
            | RunFailure::OutputTooLarge(_)
            | RunFailure::Version(
                crate::versions::VersionError::Gone(_)
                | crate::versions::VersionError::Unloadable { .. },
            ) => false,
        }
    }
}

/// How a run's execution ended, short of a halt.
enum Ending {
    Done(RunOutcome),
    Failed(RunFailure),
    /// The run waits (a `wait` step) and is due again then.
    Suspended(chrono::DateTime<Utc>),
    /// The run waits for a child run, which wakes it when it ends.
    Awaiting(RunId),
}

pub(crate) struct Executor {
    pub plan: Arc<Plan>,
    pub connectors: Connectors,
    pub store: Arc<dyn Store>,
    pub owner: String,
    pub responders: Responders,
    pub shutdown: CancellationToken,
    /// Runs the plan's expressions under its budgets.
    pub evaluator: Evaluator,
    /// Wakes the dispatcher: a child run was queued, or a parent is due.
    pub wake: Arc<tokio::sync::Notify>,
    /// Where the due times of the runs it puts back are told, so the
    /// dispatcher wakes then.
    pub due: crate::due::DueTimes,
    /// Plans of the configuration versions runs were created on.
    pub versions: Arc<crate::versions::Versions>,
    /// The engine's clock: journal times, due times of waits and retries.
    pub clock: Arc<dyn Clock>,
    /// Journal entries of runs' last steps, held back to be committed with
    /// the run's end (see [`Executor::journal`]).
    pub held: std::sync::Mutex<HashMap<RunId, JournalEntry>>,
    /// Where calls report replies that differ from their contract.
    pub drift: crate::drift::DriftLog,
    /// Where a run that ends dead is told, for alert flows.
    pub alerts: crate::alerts::AlertSender,
}

impl Executor {
    /// Drives a claimed run to its end, or until shutdown or a store failure.
    pub async fn execute(&self, run: Run) {
        let span = info_span!(
            "run",
            run_id = %run.id,
            flow = %run.flow,
            attempt = run.attempts,
            retry = run.retries
        );
        // A webhook's caller may have sent a `traceparent`: the run's trace
        // continues the caller's.
        patchbay_connector::trace_context::set_remote_parent(&span, &run.headers);
        async {
            let timer = Instant::now();
            RunStarted {
                flow: &run.flow,
                attempt: run.attempts,
            }
            .emit();
            let ending = self.drive(&run).await;
            // The last step's entry, held back for the run's end. Any other
            // ending than `Done` (an output over the cap, say) records it on
            // its own first, as it would have been.
            let held = self.take_held(run.id);
            if let Some(entry) = &held
                && !matches!(ending, Ok(Ending::Done(_)))
                && let Err(e) = self.store.record_step(&self.owner, entry, None).await
            {
                warn!(error = %e, "the last step's journal entry was not recorded");
            }
            let outcome = match ending {
                Ok(Ending::Done(outcome)) => outcome,
                Ok(Ending::Failed(failure)) => match self.retry_later(&run, &failure).await {
                    Some(outcome) => outcome,
                    None => return,
                },
                Ok(Ending::Awaiting(child)) => {
                    self.await_child(&run, child).await;
                    return;
                }
                Ok(Ending::Suspended(until)) => {
                    if self.park(&run, until).await {
                        debug!(until = %until, "run waits");
                    }
                    return;
                }
                Err(Halt::Interrupted) => {
                    debug!("run interrupted by shutdown; it will be resumed");
                    return;
                }
                Err(Halt::Store(StoreError::LeaseLost { .. })) => {
                    // Cancelled, or taken over by another node after this
                    // one stalled past its lease: either way not ours to
                    // finish, and nothing will resume it here.
                    info!("run no longer held by this node; stopped");
                    return;
                }
                Err(Halt::Store(e @ StoreError::JournalFull { .. })) => journal_full(&e),
                Err(Halt::Store(e)) => {
                    warn!(error = %e, "run halted by a store error; it will be resumed");
                    return;
                }
            };
            let mut outcome = outcome;
            self.mask_json(outcome.output.as_mut());
            outcome.error = outcome.error.map(|e| self.mask(&e));
            let mut finished = match &held {
                Some(entry) => {
                    self.store
                        .finish_with_step(&self.owner, Claim::of(&run), &outcome, entry)
                        .await
                }
                None => {
                    self.store
                        .finish(&self.owner, Claim::of(&run), &outcome)
                        .await
                }
            };
            if let Err(e @ StoreError::JournalFull { .. }) = &finished {
                // The last step's entry has no room: the run is dead, as
                // when any other step's entry has none.
                outcome = journal_full(e);
                finished = self
                    .store
                    .finish(&self.owner, Claim::of(&run), &outcome)
                    .await;
            }
            let status = outcome.status;
            let error = outcome.error.clone();
            match finished {
                Ok(()) => {
                    RunFinished {
                        flow: &run.flow,
                        status,
                        error: error.as_deref(),
                        duration: timer.elapsed(),
                    }
                    .emit();
                    if status == RunStatus::Dead {
                        self.alerts.raise(crate::alerts::AlertEvent::RunDead {
                            flow: run.flow.clone(),
                            run: run.id.to_string(),
                            error: error.clone(),
                        });
                    }
                }
                Err(StoreError::LeaseLost { .. }) => {
                    // Cancelled, or taken over after this node stalled: the
                    // run is another's to end, and may have ended already.
                    info!("run no longer held by this node; its result was not recorded")
                }
                Err(e) => warn!(error = %e, "run result not recorded; it will be resumed"),
            }
            self.responders
                .deliver(run.id, SyncReply::Ended { status, error });
            if let Some(parent) = run.parent {
                self.wake_parent(parent).await;
            }
        }
        .instrument(span)
        .await
    }

    /// Reschedules a failed run when its failure is transient and its flow's
    /// retry schedule is not spent, returning `None`; otherwise returns the
    /// dead outcome to record.
    async fn retry_later(&self, run: &Run, failure: &RunFailure) -> Option<RunOutcome> {
        // The retry schedule of the version the run executes on.
        let plan = self
            .plan_of(run)
            .await
            .unwrap_or_else(|_| self.plan.clone());
        let flow_schedule = plan
            .flows
            .get(&run.flow)
            .map(|flow| flow.run_retries.as_slice())
            .unwrap_or_default();
        // A step with a schedule of its own (a delivery) counts its own
        // attempts, from the journal: the run's retries may include other
        // steps'.
        let (schedule, retried, own_schedule) = match failure {
            RunFailure::Step {
                step,
                error,
                schedule: Some(own),
                ..
            } => {
                let attempts = self.failed_attempts(run, step, error).await;
                (&own[..], attempts.saturating_sub(1), true)
            }
            _ => (flow_schedule, run.retries as usize, false),
        };
        let delay = schedule.get(retried).filter(|_| failure.is_transient());
        let Some(delay) = delay else {
            let error = match (retried, own_schedule) {
                (0, _) => failure.message(),
                (n, false) => format!("{} (the run was retried {n} times)", failure.message()),
                (n, true) => format!("{} (attempted {} times)", failure.message(), n + 1),
            };
            return Some(RunOutcome {
                status: RunStatus::Dead,
                output: None,
                error: Some(error),
            });
        };
        // Up to 10% of jitter, so runs failed by one outage do not all come
        // back at the same instant.
        let delay = delay.mul_f64(1.0 + fastrand::f64() * 0.1);
        let due =
            self.clock.now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
        let message = self.mask(&failure.message());
        match self
            .store
            .reschedule(&self.owner, Claim::of(run), due, &message)
            .await
        {
            Ok(()) => {
                self.due.remember(due);
                RunRescheduled {
                    flow: &run.flow,
                    error: &message,
                    retry: retried as u32 + 1,
                    of: schedule.len(),
                    delay,
                }
                .emit();
                // A `sync` caller still waiting learns now that the run
                // will finish later, rather than at its timeout.
                self.responders.deliver(
                    run.id,
                    SyncReply::Ended {
                        status: RunStatus::Queued,
                        error: Some(message),
                    },
                );
            }
            Err(e) => warn!(error = %e, "run not rescheduled; it will be resumed"),
        }
        None
    }

    async fn drive(&self, run: &Run) -> Result<Ending, Halt> {
        // Earlier claims that never reached the end of a step most likely ended
        // with the node itself (a crash, an out-of-memory kill): resuming the run
        // again would take the node down again, at every restart.
        let limit = self.plan.caps.claims_without_progress;
        if run.stalled_claims > limit {
            PoisonRunStopped {
                flow: &run.flow,
                claims: run.stalled_claims - 1,
            }
            .emit();
            return Ok(Ending::Failed(RunFailure::Poison {
                stops: run.stalled_claims - 1,
                limit,
            }));
        }
        let plan = match self.plan_of(run).await {
            Ok(plan) => plan,
            Err(e) => return Ok(Ending::Failed(RunFailure::Version(e))),
        };
        let Some(flow) = plan.flows.get(&run.flow) else {
            return Ok(Ending::Failed(RunFailure::FlowGone(run.flow.clone())));
        };
        // A first claim cannot have a journal yet: skip the read on the
        // common path. Later claims (after a crash, a shutdown, a wait)
        // resume.
        let journal = if run.attempts > 1 {
            self.store.journal(run.id).await?
        } else {
            Vec::new()
        };
        let completed: Completed = journal
            .into_iter()
            .filter(|e| e.current)
            .filter_map(|e| {
                let done = match e.status {
                    StepStatus::Succeeded => Done::Succeeded(e.output?),
                    StepStatus::Skipped => Done::Skipped,
                    StepStatus::Failed => return None,
                };
                Some(((e.step_index, e.step_id, e.item), done))
            })
            .collect();
        let state = if flow.reads_state {
            self.store.flow_state(&run.flow).await?
        } else {
            Value::Null
        };
        let mut scope = RunContext::new(run.input.clone(), run.headers.clone(), state);
        let last_output = match self
            .sequence(run, &flow.steps, &mut scope, &completed)
            .await?
        {
            Sequence::Done(output) => output,
            Sequence::EndRun => {
                return Ok(Ending::Done(RunOutcome {
                    status: RunStatus::Skipped,
                    output: None,
                    error: None,
                }));
            }
            Sequence::Suspend(until) => return Ok(Ending::Suspended(until)),
            Sequence::Await(child) => return Ok(Ending::Awaiting(child)),
            Sequence::Failed(failure) => return Ok(Ending::Failed(failure)),
        };
        if let Err(message) = self.plan.caps.check_output("run's output", &last_output) {
            return Ok(Ending::Failed(RunFailure::OutputTooLarge(message)));
        }
        Ok(Ending::Done(RunOutcome {
            status: RunStatus::Succeeded,
            output: Some(last_output),
            error: None,
        }))
    }

    /// Runs steps in order: a flow's, or a branch's. Each step's result is
    /// recorded in `scope` for the steps after it.
    fn sequence<'a>(
        &'a self,
        run: &'a Run,
        steps: &'a [StepPlan],
        scope: &'a mut RunContext,
        completed: &'a Completed,
    ) -> BoxFuture<'a, Result<Sequence, Halt>> {
        async move {
            let mut last_output = Value::Null;
            for step in steps {
                match self.step(run, step, scope, completed).await? {
                    StepEnd::Continue(output) => {
                        if step.action.sets_state() {
                            scope.state = output.clone();
                        }
                        scope.record(&step.id, output.clone());
                        last_output = output;
                    }
                    StepEnd::EndRun => return Ok(Sequence::EndRun),
                    StepEnd::Suspend(until) => return Ok(Sequence::Suspend(until)),
                    StepEnd::Await(child) => return Ok(Sequence::Await(child)),
                    StepEnd::Aborted(failure) => return Ok(Sequence::Failed(failure)),
                    StepEnd::Failed(error) => {
                        return Ok(Sequence::Failed(RunFailure::Step {
                            step: step.id.clone(),
                            kind: step.kind,
                            error,
                            retry: !matches!(step.on_error, ErrorPolicy::Fail),
                            schedule: step.action.retry_schedule(),
                        }));
                    }
                }
            }
            Ok(Sequence::Done(last_output))
        }
        .boxed()
    }

    /// One step: replayed from the journal when it completed before, else
    /// performed; then its result steers the run.
    async fn step(
        &self,
        run: &Run,
        step: &StepPlan,
        scope: &mut RunContext,
        completed: &Completed,
    ) -> Result<StepEnd, Halt> {
        let output = match completed.get(&(step.index as u32, step.id.clone(), None)) {
            Some(Done::Skipped) => return Ok(StepEnd::Continue(Value::Null)),
            Some(Done::Succeeded(output)) => output.clone(),
            None => {
                if self.shutdown.is_cancelled() {
                    return Err(Halt::Interrupted);
                }
                let span = info_span!("step", step = %step.id, kind = step.kind);
                let timer = Instant::now();
                let end = self
                    .run_step(run, step, scope, completed)
                    .instrument(span.clone())
                    .await?;
                let outcome = match &end {
                    // A false `filter` skips the rest of the run.
                    Ran::Output(output) if matches!(step.action.steer(output), Steer::EndRun) => {
                        StepOutcome::Skipped
                    }
                    Ran::Output(_) => StepOutcome::Succeeded,
                    Ran::Skipped => StepOutcome::Skipped,
                    Ran::Failed(_) => StepOutcome::Failed,
                };
                span.in_scope(|| {
                    StepFinished {
                        flow: &run.flow,
                        step: &step.id,
                        kind: step.kind,
                        outcome,
                        duration: timer.elapsed(),
                    }
                    .emit()
                });
                match end {
                    Ran::Output(output) => output,
                    Ran::Skipped => return Ok(StepEnd::Continue(Value::Null)),
                    Ran::Failed(error) => return Ok(StepEnd::Failed(error)),
                }
            }
        };
        if step.for_each.is_some() {
            return Ok(StepEnd::Continue(output));
        }
        Ok(match step.action.steer(&output) {
            Steer::Next => StepEnd::Continue(output),
            Steer::EndRun => StepEnd::EndRun,
            // In whole milliseconds, as the store keeps due times: a run
            // claimed in the millisecond its wait ends would otherwise park
            // again, and be claimed again at once, until the millisecond ran
            // out.
            Steer::WaitUntil(until)
                if until.timestamp_millis() > self.clock.now().timestamp_millis() =>
            {
                StepEnd::Suspend(until)
            }
            Steer::WaitUntil(_) => StepEnd::Continue(output),
            Steer::AwaitRun(child) => self.child_result(child).await?,
            Steer::Enter(steps) => {
                let span = info_span!("branch", step = %step.id);
                match self
                    .sequence(run, steps, scope, completed)
                    .instrument(span)
                    .await?
                {
                    Sequence::Done(last) => StepEnd::Continue(last),
                    Sequence::EndRun => StepEnd::EndRun,
                    Sequence::Suspend(until) => StepEnd::Suspend(until),
                    Sequence::Await(child) => StepEnd::Await(child),
                    // The failing step inside the branch is the one to name.
                    Sequence::Failed(failure) => StepEnd::Aborted(failure),
                }
            }
        })
    }

    /// Runs a step not yet journalled: its `when`, then the step itself or
    /// each item of its `for_each`.
    async fn run_step(
        &self,
        run: &Run,
        step: &StepPlan,
        scope: &RunContext,
        completed: &Completed,
    ) -> Result<Ran, Halt> {
        let started = self.clock.now();
        let timer = Instant::now();
        if let Some(when) = &step.when {
            let vars = scope.vars(self.inline_budget());
            let expr = when.clone();
            let pass = self
                .evaluator
                .run(&scope.event, &vars, move |input, vars| {
                    expr.eval_bool(input, vars)
                })
                .await;
            match pass {
                Ok(true) => {}
                Ok(false) => {
                    let entry = self.entry(run, step, None, started, timer, StepStatus::Skipped);
                    self.record(entry, None).await?;
                    return Ok(Ran::Skipped);
                }
                Err(e) => {
                    let error = StepError::expression("when", e);
                    self.journal(run, step, None, started, timer, None, Err(&error), None)
                        .await?;
                    return Ok(Ran::Failed(error));
                }
            }
        }
        let Some((items_expr, concurrency)) = &step.for_each else {
            return Ok(
                match self
                    .perform(run, step, None, &scope.event, scope, completed)
                    .await?
                {
                    Ok(output) => Ran::Output(output),
                    Err(error) => Ran::Failed(error),
                },
            );
        };
        let vars = scope.vars(self.inline_budget());
        let items = match self.eval(items_expr, &scope.event, &vars).await {
            Ok(Value::Array(items)) => Ok(items),
            Ok(other) => Err(StepError::InvalidValue {
                place: "`for_each`".into(),
                expected: "an array",
                found: type_name(&other),
            }),
            Err(e) => Err(StepError::expression("`for_each`", e)),
        };
        let items = match items {
            Ok(items) => items,
            Err(error) => {
                self.journal(run, step, None, started, timer, None, Err(&error), None)
                    .await?;
                return Ok(Ran::Failed(error));
            }
        };
        let collected: Result<Vec<Value>, ItemHalt> = futures::stream::iter(0..items.len())
            // The closure takes an index, not `&Value`: a reference argument
            // would make the future's type higher-ranked and not provably `Send`.
            .map(|i| self.run_item(run, step, i as u32, &items[i], scope, completed))
            // `buffered` keeps results in item order while running up to
            // `concurrency` items at once; the first failure stops the rest.
            .buffered((*concurrency).max(1))
            .try_collect()
            .await;
        let output = match collected {
            Ok(results) => Value::Array(results),
            Err(ItemHalt::Failed(error)) => return Ok(Ran::Failed(error)),
            Err(ItemHalt::Halt(halt)) => return Err(halt),
        };
        self.journal(run, step, None, started, timer, None, Ok(&output), None)
            .await?;
        Ok(Ran::Output(output))
    }

    /// One item of a `for_each` step, reused from the journal when completed.
    async fn run_item(
        &self,
        run: &Run,
        step: &StepPlan,
        i: u32,
        item: &Value,
        scope: &RunContext,
        completed: &Completed,
    ) -> Result<Value, ItemHalt> {
        match completed.get(&(step.index as u32, step.id.clone(), Some(i))) {
            Some(Done::Succeeded(output)) => return Ok(output.clone()),
            Some(Done::Skipped) => return Ok(Value::Null),
            None => {}
        }
        if self.shutdown.is_cancelled() {
            return Err(ItemHalt::Halt(Halt::Interrupted));
        }
        match self
            .perform(run, step, Some(i), item, scope, completed)
            .await
        {
            Ok(Ok(output)) => Ok(output),
            Ok(Err(error)) => Err(ItemHalt::Failed(StepError::Item {
                index: i,
                error: Box::new(error),
            })),
            Err(halt) => Err(ItemHalt::Halt(halt)),
        }
    }

    /// Performs a step (or one item of it) and applies its error policy:
    /// `continue` turns a failure into an `{error}` result, `fallback` runs
    /// the fallback steps in its place. Both journal a succeeded entry for
    /// the step that carries the original error, so a resumed run reuses it.
    async fn perform(
        &self,
        run: &Run,
        step: &StepPlan,
        item: Option<u32>,
        input: &Value,
        scope: &RunContext,
        completed: &Completed,
    ) -> Result<Result<Value, StepError>, Halt> {
        let started = self.clock.now();
        let timer = Instant::now();
        let error = match self.attempt(run, step, item, input, scope).await? {
            Ok(output) => return Ok(Ok(output)),
            Err(error) => error,
        };
        let (output, note) = match &step.on_error {
            ErrorPolicy::Retry | ErrorPolicy::Fail => return Ok(Err(error)),
            ErrorPolicy::Continue => (
                serde_json::json!({ "error": error.to_string(), "class": error.class().as_str() }),
                format!("continued after: {error}"),
            ),
            ErrorPolicy::Fallback(alternatives) => {
                warn!(error = %self.mask(&error.to_string()), "step failed; running its fallback");
                let output = match self
                    .fallback(run, alternatives, item, input, scope, completed)
                    .await?
                {
                    Ok(output) => output,
                    Err((alternative, second)) => {
                        return Ok(Err(StepError::Fallback {
                            original: Box::new(error),
                            step: alternative,
                            error: Box::new(second),
                        }));
                    }
                };
                (output, format!("recovered by fallback: {error}"))
            }
        };
        let mut entry = self.entry(run, step, item, started, timer, StepStatus::Succeeded);
        entry.output = Some(output.clone());
        entry.error = Some(note);
        entry.error_class = Some(error.class().as_str().into());
        self.record(entry, None).await?;
        Ok(Ok(output))
    }

    /// Runs fallback steps in order; the last one's result is returned, or
    /// the first failure with the failing step's id.
    async fn fallback(
        &self,
        run: &Run,
        alternatives: &[StepPlan],
        item: Option<u32>,
        input: &Value,
        scope: &RunContext,
        completed: &Completed,
    ) -> Result<Result<Value, (String, StepError)>, Halt> {
        // Fallback steps see the steps before them, their own predecessors
        // included, as `$steps`.
        let mut scope = scope.clone();
        let mut output = Value::Null;
        for alternative in alternatives {
            let key = (alternative.index as u32, alternative.id.clone(), item);
            let result = match completed.get(&key) {
                Some(Done::Succeeded(done)) => Ok(done.clone()),
                Some(Done::Skipped) => Ok(Value::Null),
                None => {
                    self.attempt(run, alternative, item, input, &scope)
                        .instrument(info_span!("fallback", step = %alternative.id))
                        .await?
                }
            };
            match result {
                Ok(value) => {
                    scope.record(&alternative.id, value.clone());
                    output = value;
                }
                Err(error) => return Ok(Err((alternative.id.clone(), error))),
            }
        }
        Ok(Ok(output))
    }

    /// Performs a step (or one item of it) once and journals the result.
    async fn attempt(
        &self,
        run: &Run,
        step: &StepPlan,
        item: Option<u32>,
        input: &Value,
        scope: &RunContext,
    ) -> Result<Result<Value, StepError>, Halt> {
        let started = self.clock.now();
        let timer = Instant::now();
        let cx = StepContext {
            executor: self,
            run,
            step,
            item,
            input,
            scope,
        };
        let performed = step.action.perform(&cx).await;
        let (result, request, reply) = match performed {
            Ok(Performed {
                output,
                request,
                reply,
            }) => match self.plan.caps.check_entry(&output, request.as_ref()) {
                Ok(()) => (Ok(output), request, reply),
                Err(message) => (Err(StepError::TooLarge(message)), request, None),
            },
            Err(error) => {
                let request = error.request_summary().cloned();
                (Err(error), request, None)
            }
        };
        // The caller of a `sync` webhook is answered before the step is
        // journalled: the answer depends only on the run's recorded inputs,
        // and a run resumed after a crash finds no one waiting anyway. This
        // takes a disk write off the webhook's latency.
        if let Some(mut reply) = reply {
            // The caller is outside, like a log reader: an upstream's echo of
            // a credential that a flow copied into its answer is masked.
            self.mask_reply(&mut reply);
            self.responders.deliver(run.id, reply);
        }
        let state = match &result {
            Ok(value) if step.action.sets_state() => Some(value),
            _ => None,
        };
        self.journal(
            run,
            step,
            item,
            started,
            timer,
            request,
            result.as_ref(),
            state,
        )
        .await?;
        if result.is_ok() {
            debug!("step completed");
        }
        Ok(result)
    }

    /// How many times the failing step (the failing item of a `for_each`)
    /// was attempted, this attempt included, as its journal tells.
    async fn failed_attempts(&self, run: &Run, step: &str, error: &StepError) -> usize {
        let item = match error {
            StepError::Item { index, .. } => Some(*index),
            _ => None,
        };
        match self.store.journal(run.id).await {
            Ok(journal) => journal
                .iter()
                .filter(|e| e.step_id == step && e.item == item && e.status == StepStatus::Failed)
                .count()
                .max(1),
            // Unknown: as many as the run's retries tell, a lower bound.
            Err(e) => {
                warn!(error = %e, "journal unread; the step's attempts are counted from the run's retries");
                run.retries as usize + 1
            }
        }
    }

    /// The plan of the version the run was created on: the one in force for
    /// nearly every run, without a lock; another from the version cache.
    async fn plan_of(&self, run: &Run) -> Result<Arc<Plan>, crate::versions::VersionError> {
        if run.config_version == self.plan.version {
            return Ok(self.plan.clone());
        }
        self.versions
            .plan(self.store.as_ref(), &run.config_version)
            .await
    }

    /// What a `run_flow` step waiting for `child` becomes: its result once
    /// the child succeeded, a failure once it ended otherwise, else a wait.
    async fn child_result(&self, child: RunId) -> Result<StepEnd, Halt> {
        let Some(found) = self.store.run(child).await? else {
            return Ok(StepEnd::Failed(StepError::ChildRun {
                flow: String::new(),
                run: child.to_string(),
                status: "missing",
                error: Some("the child run is no longer in the store".into()),
            }));
        };
        Ok(match found.status {
            RunStatus::Succeeded => StepEnd::Continue(found.output.unwrap_or(Value::Null)),
            RunStatus::Skipped => StepEnd::Continue(Value::Null),
            RunStatus::Dead | RunStatus::Cancelled => StepEnd::Failed(StepError::ChildRun {
                flow: found.flow,
                run: child.to_string(),
                status: found.status.as_str(),
                error: found.error,
            }),
            RunStatus::Queued | RunStatus::Running => StepEnd::Await(child),
        })
    }

    /// Gives the worker back while `child` runs. The child wakes the parent
    /// when it ends; should it have ended between the look and the
    /// suspension, the parent wakes itself. A late safety net makes the run
    /// due again anyway.
    async fn await_child(&self, run: &Run, child: RunId) {
        let safety_net = self.clock.now() + chrono::Duration::minutes(10);
        if !self.park(run, safety_net).await {
            return;
        }
        debug!(child = %child, "run waits for its child");
        let ended =
            matches!(self.store.run(child).await, Ok(Some(found)) if found.status.is_final());
        if ended {
            self.wake_parent(run.id).await;
        }
    }

    /// Puts the run back in the queue, due at `until`, holding no worker;
    /// `false` when the store refused (the lease then expires and the run is
    /// resumed).
    async fn park(&self, run: &Run, until: chrono::DateTime<Utc>) -> bool {
        if let Err(e) = self.store.suspend(&self.owner, Claim::of(run), until).await {
            warn!(error = %e, "run not suspended; it will be resumed");
            return false;
        }
        self.due.remember(until);
        // A `sync` caller still waiting learns now that the run will finish
        // later.
        self.responders.deliver(
            run.id,
            SyncReply::Ended {
                status: RunStatus::Queued,
                error: None,
            },
        );
        true
    }

    /// Makes a waiting parent due now.
    async fn wake_parent(&self, parent: RunId) {
        match self.store.wake(parent).await {
            Ok(true) => self.wake.notify_one(),
            Ok(false) => {}
            Err(e) => warn!(error = %e, "parent run not woken; it is due later anyway"),
        }
    }

    /// Evaluates `expr` under the plan's budgets (see [`Evaluator::run`]).
    pub(crate) async fn eval(
        &self,
        expr: &Expr,
        input: &Value,
        vars: &Vars<'_>,
    ) -> Result<Value, EvalError> {
        let expr = expr.clone();
        self.evaluator
            .run(input, vars, move |input, vars| expr.eval(input, vars))
            .await
    }

    /// The budget of evaluations made directly with a run's variables.
    fn inline_budget(&self) -> patchbay_expr::Budget {
        self.evaluator.limits().inline_budget
    }

    /// A journal entry of `step`, without output or error yet.
    fn entry(
        &self,
        run: &Run,
        step: &StepPlan,
        item: Option<u32>,
        started: chrono::DateTime<Utc>,
        timer: Instant,
        status: StepStatus,
    ) -> JournalEntry {
        JournalEntry {
            run_id: run.id,
            step_index: step.index as u32,
            step_id: step.id.clone(),
            item,
            attempt: run.attempts,
            status,
            started_at: started,
            duration_ms: timer.elapsed().as_millis() as u64,
            request: None,
            output: None,
            error: None,
            error_class: None,
            current: true,
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn journal(
        &self,
        run: &Run,
        step: &StepPlan,
        item: Option<u32>,
        started: chrono::DateTime<Utc>,
        timer: Instant,
        request: Option<Value>,
        result: Result<&Value, &StepError>,
        state: Option<&Value>,
    ) -> Result<(), StoreError> {
        let status = match result {
            Ok(_) => StepStatus::Succeeded,
            Err(_) => StepStatus::Failed,
        };
        let mut entry = self.entry(run, step, item, started, timer, status);
        entry.request = request;
        match result {
            Ok(output) => entry.output = Some(output.clone()),
            Err(error) => {
                entry.error = Some(error.to_string());
                entry.error_class = Some(error.class().as_str().into());
            }
        }
        // The flow's last step ends the run: nothing starts after it, so its
        // entry can wait for the run's end and share its transaction (one
        // write instead of two). A crash in between re-runs that step on
        // resume, as a crash before its own commit would have. A failure
        // (which may be retried), an item, a state update, and a step that
        // goes on elsewhere (a branch, a wait, a child run) are written at
        // once.
        let ends_run = result
            .is_ok_and(|output| matches!(step.action.steer(output), Steer::Next | Steer::EndRun));
        if step.ends_flow && item.is_none() && ends_run && state.is_none() {
            let entry = self.masked(entry);
            self.held
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(run.id, entry);
            return Ok(());
        }
        self.record(entry, state).await
    }

    /// The entry held back for `run`'s end, if any.
    fn take_held(&self, run: RunId) -> Option<JournalEntry> {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&run)
    }

    /// Whether no secret is known to mask (no credentials, no webhook
    /// secrets): journalling then copies nothing.
    fn masks_nothing(&self) -> bool {
        self.connectors.masker().is_empty() && self.plan.redaction.masker.is_empty()
    }

    /// `entry` with every known secret masked.
    fn masked(&self, mut entry: JournalEntry) -> JournalEntry {
        if self.masks_nothing() {
            return entry;
        }
        self.mask_json(entry.request.as_mut());
        self.mask_json(entry.output.as_mut());
        entry.error = entry.error.map(|e| self.mask(&e));
        entry
    }

    /// Journals `entry` with every known secret masked (see
    /// [`crate::redaction`]).
    async fn record(&self, entry: JournalEntry, state: Option<&Value>) -> Result<(), StoreError> {
        if self.masks_nothing() {
            return self.store.record_step(&self.owner, &entry, state).await;
        }
        let entry = self.masked(entry);
        let mut masked_state = state.cloned();
        self.mask_json(masked_state.as_mut());
        self.store
            .record_step(&self.owner, &entry, masked_state.as_ref())
            .await
    }

    /// `text` with every connector credential and webhook secret masked.
    pub(crate) fn mask(&self, text: &str) -> String {
        let masked = self.connectors.masker().mask(text);
        self.plan.redaction.masker.mask(&masked)
    }

    /// A `sync` webhook's answer with every known secret masked.
    fn mask_reply(&self, reply: &mut SyncReply) {
        match reply {
            SyncReply::Respond { headers, body, .. } => {
                for (_, value) in headers.iter_mut() {
                    *value = self.mask(value);
                }
                self.mask_json(Some(body));
            }
            SyncReply::Ended { error, .. } => {
                *error = error.as_deref().map(|e| self.mask(e));
            }
        }
    }

    fn mask_json(&self, value: Option<&mut Value>) {
        if let Some(value) = value {
            self.connectors.masker().mask_json(value);
            self.plan.redaction.masker.mask_json(value);
        }
    }
}

/// How a sequence of steps ended.
enum Sequence {
    /// The last step's result.
    Done(Value),
    EndRun,
    Suspend(chrono::DateTime<Utc>),
    Await(RunId),
    Failed(RunFailure),
}

/// How a step not yet journalled ran.
enum Ran {
    Output(Value),
    /// Its `when` was false.
    Skipped,
    Failed(StepError),
}

enum ItemHalt {
    Failed(StepError),
    Halt(Halt),
}

/// The end of a run whose journal has no room for its next entry: resuming
/// would fail the same way, so it is dead, its journal kept for the record.
fn journal_full(error: &StoreError) -> RunOutcome {
    RunOutcome {
        status: RunStatus::Dead,
        output: None,
        error: Some(error.to_string()),
    }
}
