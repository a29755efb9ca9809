//! `run_flow: NAME` with `input: JQ` and `async: true|false`: starts another
//! flow as a child run, with its own journal, retries and dead letter.
//!
//! The child is committed with a dedupe key derived from the parent run, the
//! step and the item, so a resumed parent finds the child it started rather
//! than starting a second one; its id is the step's journalled result. By
//! default the parent then waits for the child durably: it gives its worker
//! back, the child's end wakes it, and the step's result becomes the child's
//! output (a child that ends dead or cancelled fails the step). With
//! `async: true` the parent goes on at once with `{run_id, flow}`.

use async_trait::async_trait;
use patchbay_config::Located;
use patchbay_expr::Expr;
use patchbay_store::{NewRun, RunId};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Compiler, Description, Kind, Performed, Steer, Step, StepContext};
use crate::failure::StepError;

/// `run_flow`'s keys.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// The flow to start as a child run.
    run_flow: Located<String>,
    /// jq producing the child's event (default `.`).
    #[serde(default)]
    input: Option<Located<String>>,
    /// Start the child and go on without waiting for it (default `false`).
    #[serde(default, rename = "async")]
    detached: Option<Located<bool>>,
}

#[derive(Debug)]
pub(crate) struct RunFlow {
    flow: String,
    input: Option<Expr>,
    detached: bool,
}

impl Kind for RunFlow {
    const KEY: &'static str = "run_flow";
    const IN_FALLBACK: bool = false;
    const TAKES_FALLBACK: bool = false;
    type Config = Config;

    fn compile(config: Config, compiler: &mut Compiler<'_>) -> Option<Self> {
        let name = &config.run_flow;
        let flows = &compiler.project.flows;
        if !flows.contains_key(name.as_str()) {
            let hint = patchbay_config::suggest_closest(name, flows.keys().map(String::as_str))
                .map(|f| format!(" — did you mean `{f}`?"))
                .unwrap_or_default();
            compiler.error(name, format!("unknown flow `{}`{hint}", name.value));
            return None;
        }
        Some(RunFlow {
            flow: name.value.clone(),
            input: compiler.optional("input", config.input.as_ref())?,
            detached: config.detached.is_some_and(|d| d.value),
        })
    }
}

#[async_trait]
impl Step for RunFlow {
    async fn perform(&self, cx: &StepContext<'_>) -> Result<Performed, StepError> {
        let input = match &self.input {
            Some(expr) => cx.eval("input", expr).await?,
            None => cx.input.clone(),
        };
        let parent = cx.run.id;
        let executor = cx.executor;
        let child = NewRun {
            id: uuid::Uuid::now_v7(),
            flow: self.flow.clone(),
            trigger: "run_flow".into(),
            input,
            headers: json!({}),
            config_version: executor.plan.version.clone(),
            // The same for every attempt of this step: a resumed parent
            // finds its child instead of starting another.
            dedupe_key: Some(match cx.item {
                Some(item) => format!("run_flow:{parent}:{}:{item}", cx.step.id),
                None => format!("run_flow:{parent}:{}", cx.step.id),
            }),
            parent: (!self.detached).then_some(parent),
            lease: None,
        };
        let outcome = executor
            .store
            .enqueue(std::slice::from_ref(&child))
            .await
            .map_err(StepError::Store)?;
        let id = outcome.first().map(|o| o.run_id()).unwrap_or(child.id);
        executor.wake.notify_one();
        Ok(Performed::output(
            json!({ "run_id": id.to_string(), "flow": self.flow }),
        ))
    }

    fn steer(&self, output: &Value) -> Steer<'_> {
        if self.detached {
            return Steer::Next;
        }
        match output
            .get("run_id")
            .and_then(Value::as_str)
            .and_then(|id| id.parse::<RunId>().ok())
        {
            Some(child) => Steer::AwaitRun(child),
            None => Steer::Next,
        }
    }

    fn describe(&self) -> Description {
        Description {
            expression: self.input.as_ref().map(|input| input.source().into()),
            runs_flow: Some(self.flow.clone()),
            ..Description::default()
        }
    }
}
