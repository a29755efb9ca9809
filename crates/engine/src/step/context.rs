//! [`StepContext`]: everything a step sees while it runs, as one value: the
//! run, the step, the item of a `for_each`, its input, the run's variables,
//! and the engine's services (evaluator, connectors, caps).

use std::sync::Arc;

use patchbay_connector::Connector;
use patchbay_expr::{EvalError, Expr, Vars};
use patchbay_store::Run;
use serde_json::Value;

use crate::context::RunContext;
use crate::executor::Executor;
use crate::failure::{StepError, type_name};

use super::StepPlan;

/// One step (or one item of it) about to be performed.
pub(crate) struct StepContext<'a> {
    pub executor: &'a Executor,
    pub run: &'a Run,
    pub step: &'a StepPlan,
    /// The item's index inside a `for_each`.
    pub item: Option<u32>,
    /// `.`: the event, or the item of a `for_each`.
    pub input: &'a Value,
    /// `$event`, `$steps`, `$state`, `$headers`.
    pub scope: &'a RunContext,
}

impl StepContext<'_> {
    /// Evaluates `expr` over the step's input, under the plan's budgets; a
    /// failure names `place`.
    pub async fn eval(&self, place: &str, expr: &Expr) -> Result<Value, StepError> {
        self.eval_raw(expr)
            .await
            .map_err(|e| StepError::expression(place, e))
    }

    async fn eval_raw(&self, expr: &Expr) -> Result<Value, EvalError> {
        self.executor.eval(expr, self.input, &self.vars()).await
    }

    /// Evaluates a jq condition: false or null is false.
    pub async fn condition(&self, place: &str, expr: &Expr) -> Result<bool, StepError> {
        let expr = expr.clone();
        self.executor
            .evaluator
            .run(self.input, &self.vars(), move |input, vars| {
                expr.eval_bool(input, vars)
            })
            .await
            .map_err(|e| StepError::expression(place, e))
    }

    /// Evaluates `expr` into name/value pairs (query, headers).
    pub async fn pairs(
        &self,
        place: &str,
        expr: &Expr,
    ) -> Result<Vec<(String, String)>, StepError> {
        pairs(place, self.eval(place, expr).await?)
    }

    /// The current time on the engine's clock.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.executor.clock.now()
    }

    /// The run's variables, under the inline budget.
    pub fn vars(&self) -> Vars<'_> {
        self.scope
            .vars(self.executor.evaluator.limits().inline_budget)
    }

    /// `RUN_ID:STEP_ID[:ITEM]`: the same for every attempt, retry and
    /// replay of one call, and different for every other call.
    pub fn default_idempotency_key(&self) -> String {
        match self.item {
            Some(item) => format!("{}:{}:{item}", self.run.id, self.step.id),
            None => format!("{}:{}", self.run.id, self.step.id),
        }
    }

    /// A connector of the plan; compiling checked that it exists.
    pub fn connector(&self, name: &str) -> Result<&Arc<Connector>, StepError> {
        self.executor
            .connectors
            .get(name)
            .ok_or_else(|| StepError::InvalidValue {
                place: format!("connector `{name}`"),
                expected: "configured",
                found: "missing",
            })
    }

    /// The call's rate-limit key, when its connector limits per key.
    pub async fn rate_key(&self, connector: &str) -> Result<Option<String>, StepError> {
        let Some(expr) = self.executor.plan.rate_keys.get(connector) else {
            return Ok(None);
        };
        let key = self
            .eval(&format!("connector `{connector}` rate_limit.key"), expr)
            .await?;
        Ok(Some(scalar_text(&key)))
    }

    /// The call's circuit-breaker key, when its connector keys breakers:
    /// the key expression over `{connector, method, path, flow, step}`
    /// (`path` as the step writes it) with the run's variables.
    pub async fn breaker_key(
        &self,
        connector: &str,
        method: &str,
        path: &str,
    ) -> Result<Option<String>, StepError> {
        let Some(expr) = self.executor.plan.breaker_keys.get(connector) else {
            return Ok(None);
        };
        let call = serde_json::json!({
            "connector": connector,
            "method": method,
            "path": path,
            "flow": self.run.flow,
            "step": self.step.id,
        });
        let key = self
            .executor
            .eval(expr, &call, &self.vars())
            .await
            .map_err(|e| {
                StepError::expression(format!("connector `{connector}` circuit_breaker.key"), e)
            })?;
        Ok(Some(scalar_text(&key)))
    }

    /// A call's idempotency key: the step's own expression, else `default`
    /// (given where a repeat could duplicate a side effect), and none when
    /// the connector sends no keys.
    pub async fn idempotency_key(
        &self,
        connector: &Connector,
        expr: Option<&Expr>,
        default: Option<String>,
    ) -> Result<Option<String>, StepError> {
        if !connector.sends_idempotency_keys() {
            return Ok(None);
        }
        Ok(match expr {
            Some(expr) => Some(scalar_text(&self.eval("idempotency_key", expr).await?)),
            None => default,
        })
    }
}

/// Turns a jq object into name/value pairs: strings as they are, other
/// scalars as JSON text, arrays as repeated names, null values left out.
pub(crate) fn pairs(place: &str, value: Value) -> Result<Vec<(String, String)>, StepError> {
    let Value::Object(map) = value else {
        return Err(StepError::InvalidValue {
            place: place.to_string(),
            expected: "an object",
            found: type_name(&value),
        });
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

pub(crate) fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
