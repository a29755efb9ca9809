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
use patchbay_connector::{CallRequest, Connectors};
use patchbay_expr::{EvalError, Expr, Vars};
use patchbay_store::{JournalEntry, Run, RunOutcome, RunStatus, StepStatus, Store, StoreError};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::context::RunContext;
use crate::plan::{Action, CallPlan, Plan, RespondPlan, StepPlan};
use crate::responders::{Responders, SyncReply};

/// Outputs of completed journal entries, by (step index, item).
type Completed = HashMap<(u32, Option<u32>), Value>;

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
    Failed(String),
}

pub(crate) struct Executor {
    pub plan: Arc<Plan>,
    pub connectors: Connectors,
    pub store: Arc<dyn Store>,
    pub owner: String,
    pub responders: Responders,
    pub shutdown: CancellationToken,
}

impl Executor {
    /// Drives a claimed run to its end, or until shutdown or a store failure.
    pub async fn execute(&self, run: Run) {
        let span = info_span!("run", run_id = %run.id, flow = %run.flow, attempt = run.attempts);
        async {
            match self.drive(&run).await {
                Ok(outcome) => {
                    let status = outcome.status;
                    let error = outcome.error.clone();
                    match self.store.finish(&self.owner, run.id, &outcome).await {
                        Ok(()) => info!(status = %status, "run finished"),
                        Err(e) => warn!(error = %e, "run result not recorded; it will be resumed"),
                    }
                    self.responders
                        .deliver(run.id, SyncReply::Ended { status, error });
                }
                Err(Halt::Interrupted) => debug!("run interrupted by shutdown; it will be resumed"),
                Err(Halt::Store(e)) => {
                    warn!(error = %e, "run halted by a store error; it will be resumed")
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn drive(&self, run: &Run) -> Result<RunOutcome, Halt> {
        let Some(flow) = self.plan.flows.get(&run.flow) else {
            return Ok(RunOutcome {
                status: RunStatus::Failed,
                output: None,
                error: Some(format!(
                    "flow `{}` no longer exists in the configuration",
                    run.flow
                )),
            });
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
            .filter(|e| e.status == StepStatus::Succeeded)
            // A run resumed after the flow was edited may find another step
            // at a journalled position: reuse an output only for the same step.
            .filter(|e| {
                flow.steps
                    .get(e.step_index as usize)
                    .is_some_and(|step| step.id == e.step_id)
            })
            .filter_map(|e| Some(((e.step_index, e.item), e.output?)))
            .collect();
        let state = self.store.flow_state(&run.flow).await?;
        let mut context = RunContext::new(run.input.clone(), run.headers.clone(), state);
        let mut last_output = Value::Null;

        for step in &flow.steps {
            let index = step.index as u32;
            let end = match completed.get(&(index, None)) {
                Some(output) => replayed(step, output.clone()),
                None => {
                    if self.shutdown.is_cancelled() {
                        return Err(Halt::Interrupted);
                    }
                    self.run_step(run, step, &context, &completed)
                        .instrument(info_span!("step", step = %step.id, kind = step.action.kind()))
                        .await?
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
                    return Ok(RunOutcome {
                        status: RunStatus::Skipped,
                        output: None,
                        error: None,
                    });
                }
                StepEnd::Failed(error) => {
                    return Ok(RunOutcome {
                        status: RunStatus::Failed,
                        output: None,
                        error: Some(format!(
                            "step `{}` ({}): {error}",
                            step.id,
                            step.action.kind()
                        )),
                    });
                }
            }
        }
        Ok(RunOutcome {
            status: RunStatus::Succeeded,
            output: Some(last_output),
            error: None,
        })
    }

    async fn run_step(
        &self,
        run: &Run,
        step: &StepPlan,
        context: &RunContext,
        completed: &Completed,
    ) -> Result<StepEnd, Halt> {
        let Some((items_expr, concurrency)) = &step.for_each else {
            return self.attempt(run, step, None, &context.event, context).await;
        };
        let started = Utc::now();
        let clock = Instant::now();
        let items = match items_expr.eval(&context.event, &context.vars()) {
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
                return Ok(StepEnd::Failed(error));
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
            Err(ItemHalt::Failed(error)) => return Ok(StepEnd::Failed(error)),
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
        if let Some(output) = completed.get(&(step.index as u32, Some(i))) {
            return Ok(output.clone());
        }
        if self.shutdown.is_cancelled() {
            return Err(ItemHalt::Halt(Halt::Interrupted));
        }
        match self.attempt(run, step, Some(i), item, context).await {
            Ok(StepEnd::Continue(output)) => Ok(output),
            Ok(StepEnd::Skip) => Ok(Value::Bool(false)),
            Ok(StepEnd::Failed(error)) => Err(ItemHalt::Failed(format!("item {i}: {error}"))),
            Err(halt) => Err(ItemHalt::Halt(halt)),
        }
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
        let vars = context.vars();
        let mut request_summary = None;
        let mut reply = None;
        let result = match &step.action {
            Action::Call(call) => {
                let default_key = format!(
                    "{}:{}{}",
                    run.id,
                    step.id,
                    item.map(|i| format!(":{i}")).unwrap_or_default()
                );
                self.call(call, input, &vars, default_key, &mut request_summary)
                    .await
            }
            Action::Transform(expr) => eval(expr, input, &vars),
            Action::Filter(expr) => expr
                .eval_bool(input, &vars)
                .map(Value::Bool)
                .map_err(|e| e.to_string()),
            Action::SetState(expr) => eval(expr, input, &vars),
            Action::Respond(respond) => {
                respond_reply(respond, input, &vars).map(|(output, answer)| {
                    reply = Some(answer);
                    output
                })
            }
        };
        let state = match (&step.action, &result) {
            (Action::SetState(_), Ok(value)) => Some(value),
            _ => None,
        };
        self.journal(
            run,
            step,
            item,
            started,
            clock,
            request_summary,
            result.as_ref().map_err(String::as_str),
            state,
        )
        .await?;
        Ok(match result {
            Err(error) => StepEnd::Failed(error),
            Ok(Value::Bool(false)) if matches!(step.action, Action::Filter(_)) => StepEnd::Skip,
            Ok(output) => {
                if let Some(reply) = reply {
                    self.responders.deliver(run.id, reply);
                }
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
    ) -> Result<Value, String> {
        let connector = self
            .connectors
            .get(&call.connector)
            .ok_or_else(|| format!("connector `{}` is not configured", call.connector))?;
        let path = call
            .path
            .render_path(input, vars)
            .map_err(|e| format!("path: {e}"))?;
        let query = match &call.query {
            Some(expr) => pairs("query", expr.eval(input, vars))?,
            None => Vec::new(),
        };
        let headers = match &call.headers {
            Some(expr) => pairs("headers", expr.eval(input, vars))?,
            None => Vec::new(),
        };
        let body = match &call.body {
            Some(expr) => Some(expr.eval(input, vars).map_err(|e| format!("body: {e}"))?),
            None => None,
        };
        // Stable across retries and resumed runs, so the upstream can tell a
        // repeat from a new request. Sent by default only where a repeat
        // could duplicate a side effect (POST, PATCH).
        let idempotency_key = match &call.idempotency_key {
            Some(expr) => Some(scalar_text(
                &expr
                    .eval(input, vars)
                    .map_err(|e| format!("idempotency_key: {e}"))?,
            )),
            None if matches!(call.method.as_str(), "POST" | "PATCH") => Some(default_key),
            None => None,
        }
        .filter(|_| connector.sends_idempotency_keys());
        let request = CallRequest {
            method: call.method.clone(),
            path,
            query,
            headers,
            body,
            idempotency_key,
        };
        let mut shown = connector.summarize(&request);
        let policy = call.retry.unwrap_or_else(|| connector.retry_policy());
        let result = connector.send(&request, policy).await;
        if let Value::Object(map) = &mut shown {
            let (attempts, status) = match &result {
                Ok(done) => (done.attempts, Some(done.response.status)),
                Err(failed) => (failed.attempts, failed.error.status()),
            };
            map.insert("attempts".into(), attempts.into());
            if let Some(status) = status {
                map.insert("status".into(), status.into());
            }
        }
        *summary = Some(shown);
        match result {
            Ok(done) => Ok(done.response.into_value()),
            Err(failed) => Err(match failed.attempts {
                1 => failed.error.to_string(),
                n => format!("{} (after {n} attempts)", failed.error),
            }),
        }
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
        };
        self.store.record_step(&self.owner, &entry, state).await
    }
}

/// The result of a step already in the journal.
fn replayed(step: &StepPlan, output: Value) -> StepEnd {
    match (&step.action, &output) {
        (Action::Filter(_), Value::Bool(false)) => StepEnd::Skip,
        _ => StepEnd::Continue(output),
    }
}

fn eval(expr: &Expr, input: &Value, vars: &Vars<'_>) -> Result<Value, String> {
    expr.eval(input, vars).map_err(|e| e.to_string())
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

/// A `respond` step's answer, and the same as the step's journalled output.
fn respond_reply(
    respond: &RespondPlan,
    input: &Value,
    vars: &Vars<'_>,
) -> Result<(Value, SyncReply), String> {
    let headers = match &respond.headers {
        Some(expr) => pairs("headers", expr.eval(input, vars))?,
        None => Vec::new(),
    };
    let body = match &respond.body {
        Some(expr) => expr.eval(input, vars).map_err(|e| format!("body: {e}"))?,
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

enum ItemHalt {
    Failed(String),
    Halt(Halt),
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
