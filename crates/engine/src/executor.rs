//! The executor: runs one claimed run through its flow's steps.
//!
//! Each step's result is journalled before the next step starts. A run that
//! was interrupted (crash, shutdown) is resumed from its journal: completed
//! steps, and completed items of a `for_each`, are not executed again; their
//! recorded outputs are reused. A step is the unit of progress, so at most
//! the one step in flight when a node died is repeated.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use futures::{StreamExt, TryStreamExt};
use patchbay_connector::redact::SensitiveHeaders;
use patchbay_connector::{
    CallRequest, Collected, Connector, Connectors, Delivered, FetchError, GraphqlRequest,
    GraphqlResult, PageError, Undelivered,
};
use patchbay_expr::{Budget, EvalError, Expr, Vars};
use patchbay_store::{JournalEntry, Run, RunOutcome, RunStatus, StepStatus, Store, StoreError};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::context::RunContext;
use crate::evaluate::Evaluator;
use crate::events::{
    PoisonRunStopped, RunFinished, RunRescheduled, RunStarted, StepFinished, StepOutcome,
};
use crate::plan::{Action, CallPlan, ErrorPolicy, GraphqlPlan, Plan, RespondPlan, StepPlan};
use crate::responders::{Responders, SyncReply};

/// Outputs of completed journal entries, by (step index, step id, item).
/// The id tells a step from its fallback steps, which share its position,
/// and from another step found at a journalled position after an edit.
type Completed = HashMap<(u32, String, Option<u32>), Value>;

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

/// How a step ended.
enum StepEnd {
    Continue(Value),
    /// A filter was false: the run ends as skipped.
    Skip,
    Failed(Failure),
}

/// A failed step (or item, or call).
#[derive(Clone, Debug)]
struct Failure {
    message: String,
    /// Whether the same step may succeed later (upstream down, 5xx, 429,
    /// timeout, open breaker): only such failures reschedule the run.
    transient: bool,
}

impl Failure {
    /// A failure that retrying cannot cure (an expression error, a 4xx).
    fn permanent(message: String) -> Failure {
        Failure {
            message,
            transient: false,
        }
    }
}

/// How a run's execution ended, short of a halt.
enum Ending {
    Done(RunOutcome),
    Failed(Failure),
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
            let clock = Instant::now();
            RunStarted {
                flow: &run.flow,
                attempt: run.attempts,
            }
            .emit();
            let outcome = match self.drive(&run).await {
                Ok(Ending::Done(outcome)) => outcome,
                Ok(Ending::Failed(failure)) => match self.retry_later(&run, &failure).await {
                    Some(outcome) => outcome,
                    None => return,
                },
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
                Err(Halt::Store(e)) => {
                    warn!(error = %e, "run halted by a store error; it will be resumed");
                    return;
                }
            };
            let mut outcome = outcome;
            self.mask_json(outcome.output.as_mut());
            outcome.error = outcome.error.map(|e| self.mask(&e));
            let status = outcome.status;
            let error = outcome.error.clone();
            match self.store.finish(&self.owner, run.id, &outcome).await {
                Ok(()) => RunFinished {
                    flow: &run.flow,
                    status,
                    error: error.as_deref(),
                    duration: clock.elapsed(),
                }
                .emit(),
                Err(e) => warn!(error = %e, "run result not recorded; it will be resumed"),
            }
            self.responders
                .deliver(run.id, SyncReply::Ended { status, error });
        }
        .instrument(span)
        .await
    }

    /// Reschedules a failed run when its failure is transient and its flow's
    /// retry schedule is not spent, returning `None`; otherwise returns the
    /// dead outcome to record.
    async fn retry_later(&self, run: &Run, failure: &Failure) -> Option<RunOutcome> {
        let schedule = self
            .plan
            .flows
            .get(&run.flow)
            .map(|flow| flow.run_retries.as_slice())
            .unwrap_or_default();
        let delay = schedule
            .get(run.retries as usize)
            .filter(|_| failure.transient);
        let Some(delay) = delay else {
            let error = match run.retries {
                0 => failure.message.clone(),
                n => format!("{} (the run was retried {n} times)", failure.message),
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
        let due = Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
        let message = self.mask(&failure.message);
        match self
            .store
            .reschedule(&self.owner, run.id, due, &message)
            .await
        {
            Ok(()) => {
                RunRescheduled {
                    flow: &run.flow,
                    error: &message,
                    retry: run.retries + 1,
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
            return Ok(Ending::Failed(Failure::permanent(format!(
                "the run stopped the node {} times before reaching the end of a step; \
                 it is not resumed again (engine.max_claims_without_progress: {limit})",
                run.stalled_claims - 1
            ))));
        }
        let Some(flow) = self.plan.flows.get(&run.flow) else {
            return Ok(Ending::Failed(Failure::permanent(format!(
                "flow `{}` no longer exists in the configuration",
                run.flow
            ))));
        };
        // A first claim cannot have a journal yet: skip the read on the
        // common path. Later claims (after a crash or a shutdown) resume.
        let journal = if run.attempts > 1 {
            self.store.journal(run.id).await?
        } else {
            Vec::new()
        };
        let completed: Completed = journal
            .into_iter()
            .filter(|e| e.current && e.status == StepStatus::Succeeded)
            .filter_map(|e| Some(((e.step_index, e.step_id, e.item), e.output?)))
            .collect();
        let state = self.store.flow_state(&run.flow).await?;
        let mut context = RunContext::new(run.input.clone(), run.headers.clone(), state);
        let mut last_output = Value::Null;

        for step in &flow.steps {
            let index = step.index as u32;
            let end = match completed.get(&(index, step.id.clone(), None)) {
                Some(output) => replayed(step, output.clone()),
                None => {
                    if self.shutdown.is_cancelled() {
                        return Err(Halt::Interrupted);
                    }
                    let span = info_span!("step", step = %step.id, kind = step.action.kind());
                    let clock = Instant::now();
                    let end = self
                        .run_step(run, step, &context, &completed)
                        .instrument(span.clone())
                        .await?;
                    let outcome = match &end {
                        StepEnd::Continue(_) => StepOutcome::Succeeded,
                        StepEnd::Skip => StepOutcome::Skipped,
                        StepEnd::Failed(_) => StepOutcome::Failed,
                    };
                    span.in_scope(|| {
                        StepFinished {
                            flow: &run.flow,
                            step: &step.id,
                            kind: step.action.kind(),
                            outcome,
                            duration: clock.elapsed(),
                        }
                        .emit()
                    });
                    end
                }
            };
            match end {
                StepEnd::Continue(output) => {
                    if let Action::SetState(_) = step.action {
                        context.state = output.clone();
                    }
                    context.record(&step.id, output.clone());
                    last_output = output;
                }
                StepEnd::Skip => {
                    return Ok(Ending::Done(RunOutcome {
                        status: RunStatus::Skipped,
                        output: None,
                        error: None,
                    }));
                }
                StepEnd::Failed(failure) => {
                    return Ok(Ending::Failed(Failure {
                        message: format!(
                            "step `{}` ({}): {}",
                            step.id,
                            step.action.kind(),
                            failure.message
                        ),
                        // `on_error: fail` asks for no run-level retries.
                        transient: failure.transient && !matches!(step.on_error, ErrorPolicy::Fail),
                    }));
                }
            }
        }
        if let Err(message) = self.plan.caps.check_output("run's output", &last_output) {
            return Ok(Ending::Failed(Failure::permanent(message)));
        }
        Ok(Ending::Done(RunOutcome {
            status: RunStatus::Succeeded,
            output: Some(last_output),
            error: None,
        }))
    }

    async fn run_step(
        &self,
        run: &Run,
        step: &StepPlan,
        context: &RunContext,
        completed: &Completed,
    ) -> Result<StepEnd, Halt> {
        let Some((items_expr, concurrency)) = &step.for_each else {
            return self
                .perform(run, step, None, &context.event, context, completed)
                .await;
        };
        let started = Utc::now();
        let clock = Instant::now();
        let vars = context.vars(self.inline_budget());
        let items = match self.eval(items_expr, &context.event, &vars).await {
            Ok(Value::Array(items)) => Ok(items),
            Ok(other) => Err(format!(
                "`for_each` must produce an array, got {}",
                type_name(&other)
            )),
            Err(e) => Err(format!("`for_each`: {e}")),
        };
        let items = match items {
            Ok(items) => items,
            Err(error) => {
                self.journal(run, step, None, started, clock, None, Err(&error), None)
                    .await?;
                return Ok(StepEnd::Failed(Failure::permanent(error)));
            }
        };
        let collected: Result<Vec<Value>, ItemHalt> = futures::stream::iter(0..items.len())
            // The closure takes an index, not `&Value`: a reference argument
            // would make the future's type higher-ranked and not provably `Send`.
            .map(|i| self.run_item(run, step, i as u32, &items[i], context, completed))
            // `buffered` keeps results in item order while running up to
            // `concurrency` items at once; the first failure stops the rest.
            .buffered((*concurrency).max(1))
            .try_collect()
            .await;
        let output = match collected {
            Ok(results) => Value::Array(results),
            Err(ItemHalt::Failed(failure)) => return Ok(StepEnd::Failed(failure)),
            Err(ItemHalt::Halt(halt)) => return Err(halt),
        };
        self.journal(run, step, None, started, clock, None, Ok(&output), None)
            .await?;
        Ok(StepEnd::Continue(output))
    }

    /// One item of a `for_each` step, reused from the journal when completed.
    #[allow(clippy::too_many_arguments)]
    async fn run_item(
        &self,
        run: &Run,
        step: &StepPlan,
        i: u32,
        item: &Value,
        context: &RunContext,
        completed: &Completed,
    ) -> Result<Value, ItemHalt> {
        if let Some(output) = completed.get(&(step.index as u32, step.id.clone(), Some(i))) {
            return Ok(output.clone());
        }
        if self.shutdown.is_cancelled() {
            return Err(ItemHalt::Halt(Halt::Interrupted));
        }
        match self
            .perform(run, step, Some(i), item, context, completed)
            .await
        {
            Ok(StepEnd::Continue(output)) => Ok(output),
            Ok(StepEnd::Skip) => Ok(Value::Bool(false)),
            Ok(StepEnd::Failed(failure)) => Err(ItemHalt::Failed(Failure {
                message: format!("item {i}: {}", failure.message),
                ..failure
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
        context: &RunContext,
        completed: &Completed,
    ) -> Result<StepEnd, Halt> {
        let started = Utc::now();
        let clock = Instant::now();
        let end = self.attempt(run, step, item, input, context).await?;
        let StepEnd::Failed(failure) = end else {
            return Ok(end);
        };
        let (output, note) = match &step.on_error {
            ErrorPolicy::Retry | ErrorPolicy::Fail => return Ok(StepEnd::Failed(failure)),
            ErrorPolicy::Continue => (
                serde_json::json!({ "error": failure.message }),
                format!("continued after: {}", failure.message),
            ),
            ErrorPolicy::Fallback(alternatives) => {
                warn!(error = %self.mask(&failure.message), "step failed; running its fallback");
                let output = match self
                    .fallback(run, alternatives, item, input, context, completed)
                    .await?
                {
                    Ok(output) => output,
                    Err((alternative, second)) => {
                        return Ok(StepEnd::Failed(Failure {
                            message: format!(
                                "{}; fallback `{alternative}` failed too: {}",
                                failure.message, second.message
                            ),
                            transient: second.transient,
                        }));
                    }
                };
                (
                    output,
                    format!("recovered by fallback: {}", failure.message),
                )
            }
        };
        let entry = JournalEntry {
            run_id: run.id,
            step_index: step.index as u32,
            step_id: step.id.clone(),
            item,
            attempt: run.attempts,
            status: StepStatus::Succeeded,
            started_at: started,
            duration_ms: clock.elapsed().as_millis() as u64,
            request: None,
            output: Some(output.clone()),
            error: Some(note),
            current: true,
        };
        self.record(entry, None).await?;
        Ok(StepEnd::Continue(output))
    }

    /// Runs fallback steps in order; the last one's result is returned, or
    /// the first failure with the failing step's id.
    async fn fallback(
        &self,
        run: &Run,
        alternatives: &[StepPlan],
        item: Option<u32>,
        input: &Value,
        context: &RunContext,
        completed: &Completed,
    ) -> Result<Result<Value, (String, Failure)>, Halt> {
        // Fallback steps see the steps before them, their own predecessors
        // included, as `$steps`.
        let mut scope = context.clone();
        let mut output = Value::Null;
        for alternative in alternatives {
            let key = (alternative.index as u32, alternative.id.clone(), item);
            let end = match completed.get(&key) {
                Some(done) => StepEnd::Continue(done.clone()),
                None => {
                    self.attempt(run, alternative, item, input, &scope)
                        .instrument(info_span!("fallback", step = %alternative.id))
                        .await?
                }
            };
            match end {
                StepEnd::Continue(value) => {
                    scope.record(&alternative.id, value.clone());
                    output = value;
                }
                StepEnd::Skip => output = Value::Bool(false),
                StepEnd::Failed(failure) => return Ok(Err((alternative.id.clone(), failure))),
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
        context: &RunContext,
    ) -> Result<StepEnd, Halt> {
        let started = Utc::now();
        let clock = Instant::now();
        let vars = context.vars(self.inline_budget());
        let mut request_summary = None;
        let mut reply = None;
        let result = match &step.action {
            Action::Call(call) => {
                let default_key = default_idempotency_key(run, step, item);
                self.call(call, input, &vars, default_key, &mut request_summary)
                    .await
                    .map_err(CallFailure::into_failure)
            }
            Action::Graphql(graphql) => {
                let default_key = default_idempotency_key(run, step, item);
                self.graphql(graphql, input, &vars, default_key, &mut request_summary)
                    .await
                    .map_err(CallFailure::into_failure)
            }
            Action::Transform(expr) => self
                .eval(expr, input, &vars)
                .await
                .map_err(|e| Failure::permanent(e.to_string())),
            Action::Filter(expr) => {
                let expr = expr.clone();
                self.evaluator
                    .run(input, &vars, move |input, vars| expr.eval_bool(input, vars))
                    .await
                    .map(Value::Bool)
                    .map_err(|e| Failure::permanent(e.to_string()))
            }
            Action::SetState(expr) => self
                .eval(expr, input, &vars)
                .await
                .map_err(|e| Failure::permanent(e.to_string())),
            Action::Respond(respond) => self
                .respond_reply(respond, input, &vars)
                .await
                .map(|(output, answer)| {
                    reply = Some(answer);
                    output
                })
                .map_err(Failure::permanent),
        };
        let result = result.and_then(|output| {
            let caps = &self.plan.caps;
            caps.check_entry(&output, request_summary.as_ref())
                .and_then(|()| match step.action {
                    Action::SetState(_) => caps.check_output("flow state", &output),
                    _ => Ok(()),
                })
                .map_err(Failure::permanent)?;
            Ok(output)
        });
        if result.is_err() {
            reply = None;
        }
        let state = match (&step.action, &result) {
            (Action::SetState(_), Ok(value)) => Some(value),
            _ => None,
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
        self.journal(
            run,
            step,
            item,
            started,
            clock,
            request_summary,
            result.as_ref().map_err(|f| f.message.as_str()),
            state,
        )
        .await?;
        Ok(match result {
            Err(failure) => StepEnd::Failed(failure),
            Ok(Value::Bool(false)) if matches!(step.action, Action::Filter(_)) => StepEnd::Skip,
            Ok(output) => {
                debug!("step completed");
                StepEnd::Continue(output)
            }
        })
    }

    async fn call(
        &self,
        call: &CallPlan,
        input: &Value,
        vars: &Vars<'_>,
        default_key: String,
        summary: &mut Option<Value>,
    ) -> Result<Value, CallFailure> {
        let connector = self.connector(&call.connector)?;
        let path = {
            let template = call.path.clone();
            self.evaluator
                .run(input, vars, move |input, vars| {
                    template.render_path(input, vars)
                })
                .await
                .map_err(|e| format!("path: {e}"))?
        };
        let query = match &call.query {
            Some(expr) => pairs("query", self.eval(expr, input, vars).await)?,
            None => Vec::new(),
        };
        let headers = match &call.headers {
            Some(expr) => pairs("headers", self.eval(expr, input, vars).await)?,
            None => Vec::new(),
        };
        let body = match &call.body {
            Some(expr) => Some(
                self.eval(expr, input, vars)
                    .await
                    .map_err(|e| format!("body: {e}"))?,
            ),
            None => None,
        };
        // Stable across retries and resumed runs, so the upstream can tell a
        // repeat from a new request. Sent by default only where a repeat
        // could duplicate a side effect (POST, PATCH).
        let has_side_effects = matches!(call.method.as_str(), "POST" | "PATCH");
        let idempotency_key = self
            .idempotency_key(
                connector,
                call.idempotency_key.as_ref(),
                has_side_effects.then_some(default_key),
                input,
                vars,
            )
            .await?;
        let request = CallRequest {
            method: call.method.clone(),
            path,
            query,
            headers,
            body,
            idempotency_key,
            rate_key: self.rate_key(&call.connector, input, vars).await?,
        };
        let shown = connector.summarize(&request);
        let policy = call.retry.unwrap_or_else(|| connector.retry_policy());
        let exchange = match &call.pagination {
            None => {
                let mut exchange = Exchange::of_send(connector.send(&request, policy).await);
                if let Ok(output) = &mut exchange.result
                    && let Some(headers) = output.get_mut("headers")
                {
                    self.plan.redaction.headers.redact(headers);
                    SensitiveHeaders::redact_names(headers, connector.sensitive_headers());
                }
                exchange
            }
            Some(pagination) => Exchange::of_pages(
                connector
                    .paginate(request, policy, pagination, *vars)
                    .collect()
                    .await,
            ),
        };
        *summary = Some(exchange.summarize(shown));
        exchange.result
    }

    async fn graphql(
        &self,
        graphql: &GraphqlPlan,
        input: &Value,
        vars: &Vars<'_>,
        default_key: String,
        summary: &mut Option<Value>,
    ) -> Result<Value, CallFailure> {
        let connector = self.connector(&graphql.connector)?;
        let variables = match &graphql.variables {
            Some(expr) => patchbay_connector::variables(
                self.eval(expr, input, vars)
                    .await
                    .map_err(|e| format!("variables: {e}"))?,
            )?,
            None => serde_json::Map::new(),
        };
        let headers = match &graphql.headers {
            Some(expr) => pairs("headers", self.eval(expr, input, vars).await)?,
            None => Vec::new(),
        };
        // A query may be repeated freely; a mutation carries a key as any
        // `POST` does, so its retries and resumed runs apply it once.
        let idempotency_key = self
            .idempotency_key(
                connector,
                graphql.idempotency_key.as_ref(),
                (!graphql.document.is_query()).then_some(default_key),
                input,
                vars,
            )
            .await?;
        let request = GraphqlRequest {
            path: graphql.path.clone(),
            document: graphql.document.clone(),
            variables,
            headers,
            idempotency_key,
        };
        let shown = connector.summarize(&request.to_call());
        let policy = graphql.retry.unwrap_or_else(|| connector.retry_policy());
        let exchange = match &graphql.pagination {
            None => Exchange::of_graphql(connector.graphql(&request, policy).await),
            Some(pagination) => Exchange::of_pages(
                connector
                    .paginate_graphql(&request, policy, pagination, *vars)
                    .collect()
                    .await,
            ),
        };
        *summary = Some(exchange.summarize(shown));
        exchange.result
    }

    /// Evaluates `expr` under the plan's budgets (see [`Evaluator::run`]).
    async fn eval(&self, expr: &Expr, input: &Value, vars: &Vars<'_>) -> Result<Value, EvalError> {
        let expr = expr.clone();
        self.evaluator
            .run(input, vars, move |input, vars| expr.eval(input, vars))
            .await
    }

    /// The budget of evaluations made directly with a run's variables (by the connector,
    /// for pagination); the executor's own go through [`Executor::eval`].
    fn inline_budget(&self) -> Budget {
        self.evaluator.limits().inline_budget
    }

    /// A call's idempotency key: the step's own expression, else `default`
    /// (given where a repeat could duplicate a side effect), and none when the
    /// connector sends no keys.
    async fn idempotency_key(
        &self,
        connector: &Connector,
        expr: Option<&Expr>,
        default: Option<String>,
        input: &Value,
        vars: &Vars<'_>,
    ) -> Result<Option<String>, CallFailure> {
        if !connector.sends_idempotency_keys() {
            return Ok(None);
        }
        Ok(match expr {
            Some(expr) => Some(scalar_text(
                &self
                    .eval(expr, input, vars)
                    .await
                    .map_err(|e| format!("idempotency_key: {e}"))?,
            )),
            None => default,
        })
    }

    /// A `respond` step's answer, and the same as the step's journalled output.
    async fn respond_reply(
        &self,
        respond: &RespondPlan,
        input: &Value,
        vars: &Vars<'_>,
    ) -> Result<(Value, SyncReply), String> {
        let headers = match &respond.headers {
            Some(expr) => pairs("headers", self.eval(expr, input, vars).await)?,
            None => Vec::new(),
        };
        let body = match &respond.body {
            Some(expr) => self
                .eval(expr, input, vars)
                .await
                .map_err(|e| format!("body: {e}"))?,
            None => Value::Null,
        };
        let output = serde_json::json!({
            "status": respond.status,
            "headers": headers
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect::<serde_json::Map<_, _>>(),
            "body": body,
        });
        let reply = SyncReply::Respond {
            status: respond.status,
            headers,
            body,
        };
        Ok((output, reply))
    }

    fn connector(&self, name: &str) -> Result<&Arc<Connector>, CallFailure> {
        self.connectors
            .get(name)
            .ok_or_else(|| CallFailure::Request(format!("connector `{name}` is not configured")))
    }

    /// The call's rate-limit key, when its connector limits per key.
    async fn rate_key(
        &self,
        connector: &str,
        input: &Value,
        vars: &Vars<'_>,
    ) -> Result<Option<String>, CallFailure> {
        let Some(expr) = self.plan.rate_keys.get(connector) else {
            return Ok(None);
        };
        let key = self
            .eval(expr, input, vars)
            .await
            .map_err(|e| format!("connector `{connector}` rate_limit.key: {e}"))?;
        Ok(Some(scalar_text(&key)))
    }

    #[allow(clippy::too_many_arguments)]
    async fn journal(
        &self,
        run: &Run,
        step: &StepPlan,
        item: Option<u32>,
        started: chrono::DateTime<Utc>,
        clock: Instant,
        request: Option<Value>,
        result: Result<&Value, &str>,
        state: Option<&Value>,
    ) -> Result<(), StoreError> {
        let entry = JournalEntry {
            run_id: run.id,
            step_index: step.index as u32,
            step_id: step.id.clone(),
            item,
            attempt: run.attempts,
            status: if result.is_ok() {
                StepStatus::Succeeded
            } else {
                StepStatus::Failed
            },
            started_at: started,
            duration_ms: clock.elapsed().as_millis() as u64,
            request,
            output: result.ok().cloned(),
            error: result.err().map(str::to_string),
            current: true,
        };
        self.record(entry, state).await
    }

    /// Journals `entry` with every known secret masked (see
    /// [`crate::redaction`]).
    async fn record(
        &self,
        mut entry: JournalEntry,
        state: Option<&Value>,
    ) -> Result<(), StoreError> {
        if self.connectors.masker().is_empty() && self.plan.redaction.masker.is_empty() {
            return self.store.record_step(&self.owner, &entry, state).await;
        }
        self.mask_json(entry.request.as_mut());
        self.mask_json(entry.output.as_mut());
        entry.error = entry.error.map(|e| self.mask(&e));
        let mut masked_state = state.cloned();
        self.mask_json(masked_state.as_mut());
        self.store
            .record_step(&self.owner, &entry, masked_state.as_ref())
            .await
    }

    /// `text` with every connector credential and webhook secret masked.
    fn mask(&self, text: &str) -> String {
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

/// `RUN_ID:STEP_ID[:ITEM]`: the same for every attempt, retry and replay
/// of one call, and different for every other call.
fn default_idempotency_key(run: &Run, step: &StepPlan, item: Option<u32>) -> String {
    match item {
        Some(item) => format!("{}:{}:{item}", run.id, step.id),
        None => format!("{}:{}", run.id, step.id),
    }
}

/// The result of a step already in the journal.
fn replayed(step: &StepPlan, output: Value) -> StepEnd {
    match (&step.action, &output) {
        (Action::Filter(_), Value::Bool(false)) => StepEnd::Skip,
        _ => StepEnd::Continue(output),
    }
}

/// Turns a jq object into name/value pairs: strings as they are, other
/// scalars as JSON text, arrays as repeated names, null values left out.
fn pairs(what: &str, value: Result<Value, EvalError>) -> Result<Vec<(String, String)>, String> {
    let value = value.map_err(|e| format!("{what}: {e}"))?;
    let Value::Object(map) = value else {
        return Err(format!(
            "{what} must be an object, got {}",
            type_name(&value)
        ));
    };
    let mut out = Vec::with_capacity(map.len());
    for (key, value) in map {
        match value {
            Value::Null => {}
            Value::Array(values) => {
                for v in values {
                    out.push((key.clone(), scalar_text(&v)));
                }
            }
            other => out.push((key, scalar_text(&other))),
        }
    }
    Ok(out)
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// What one call (or paginated series of calls) produced, with what the
/// journal's request summary records of it.
struct Exchange {
    result: Result<Value, CallFailure>,
    attempts: u32,
    status: Option<u16>,
    pages: Option<u32>,
}

impl Exchange {
    fn failed(message: String, transient: bool, attempts: u32, status: Option<u16>) -> Exchange {
        let message = match attempts {
            0 | 1 => message,
            n => format!("{message} (after {n} attempts)"),
        };
        Exchange {
            result: Err(CallFailure::Upstream(Failure { message, transient })),
            attempts,
            status,
            pages: None,
        }
    }

    fn of_send(result: Result<Delivered, Undelivered>) -> Exchange {
        match result {
            Ok(done) => Exchange {
                attempts: done.attempts,
                status: Some(done.response.status),
                result: Ok(done.response.into_value()),
                pages: None,
            },
            Err(failed) => Exchange::failed(
                failed.error.to_string(),
                failed.error.is_transient(),
                failed.attempts,
                failed.error.status(),
            ),
        }
    }

    fn of_graphql(result: Result<GraphqlResult, FetchError>) -> Exchange {
        match result {
            Ok(done) => Exchange {
                attempts: done.attempts,
                status: Some(done.response.status),
                result: Ok(done.data),
                pages: None,
            },
            Err(failed) => Exchange::of_fetch_error(&failed, failed.to_string()),
        }
    }

    fn of_pages(result: Result<Collected, PageError>) -> Exchange {
        match result {
            Ok(collected) => {
                if let Some(warning) = &collected.warning {
                    warn!(pages = collected.pages, "{warning}");
                }
                Exchange {
                    attempts: collected.attempts,
                    status: None,
                    pages: Some(collected.pages),
                    result: Ok(collected.into_value()),
                }
            }
            Err(failed) => {
                let mut exchange = Exchange::of_fetch_error(&failed.error, failed.to_string());
                exchange.pages = Some(failed.page);
                exchange
            }
        }
    }

    fn of_fetch_error(error: &FetchError, message: String) -> Exchange {
        let transient = match error {
            FetchError::Call { error, .. } => error.is_transient(),
            // An unusable page or GraphQL `errors`: the same request would
            // get the same answer.
            _ => false,
        };
        Exchange::failed(message, transient, error.attempts(), error.status())
    }

    /// The request summary with the attempts, status and pages added.
    fn summarize(&self, mut shown: Value) -> Value {
        if let Value::Object(map) = &mut shown {
            map.insert("attempts".into(), self.attempts.into());
            if let Some(status) = self.status {
                map.insert("status".into(), status.into());
            }
            if let Some(pages) = self.pages {
                map.insert("pages".into(), pages.into());
            }
        }
        shown
    }
}

enum ItemHalt {
    Failed(Failure),
    Halt(Halt),
}

/// Why a call produced no response: the request could not be made from the
/// step's expressions (permanent), or the upstream failed.
enum CallFailure {
    Request(String),
    Upstream(Failure),
}

impl CallFailure {
    fn into_failure(self) -> Failure {
        match self {
            CallFailure::Request(message) => Failure::permanent(message),
            CallFailure::Upstream(failure) => failure,
        }
    }
}

impl From<String> for CallFailure {
    fn from(message: String) -> Self {
        CallFailure::Request(message)
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
