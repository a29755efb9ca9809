//! `switch: {cases: [{name, when, steps}], default: [steps]}`: runs the steps
//! of the first case whose `when` is true, else the `default` steps (or
//! nothing). The chosen branch is the step's journalled result, so a resumed
//! run takes the same branch whatever the data looks like by then; the
//! branch's steps are journalled as any step, and the last one's result
//! becomes the switch's in `$steps`.

use async_trait::async_trait;
use patchbay_config::{Located, StepConfig};
use patchbay_expr::Expr;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Compiler, Description, Kind, Performed, Steer, Step, StepContext, StepPlan};
use crate::failure::StepError;

const DEFAULT: &str = "default";

/// `switch`'s keys.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// Named branches: the first case whose `when` is true runs.
    switch: Located<SwitchConfig>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SwitchConfig {
    /// The branches, tried in order.
    cases: Vec<Located<CaseConfig>>,
    /// Steps run when no case matches (default: none, the run goes on).
    #[serde(default)]
    default: Option<Vec<Located<StepConfig>>>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CaseConfig {
    /// The branch's name, in the journal and in default step ids
    /// (default `case-N`).
    #[serde(default)]
    name: Option<Located<String>>,
    /// jq condition choosing this branch.
    when: Located<String>,
    /// What the branch does, in order; any step kind.
    steps: Vec<Located<StepConfig>>,
}

#[derive(Debug)]
struct Case {
    name: String,
    when: Expr,
    steps: Vec<StepPlan>,
}

#[derive(Debug)]
pub(crate) struct Switch {
    cases: Vec<Case>,
    default: Option<Vec<StepPlan>>,
}

impl Kind for Switch {
    const KEY: &'static str = "switch";
    const IN_FALLBACK: bool = false;
    const TAKES_FALLBACK: bool = false;
    type Config = Config;

    fn compile(config: Config, compiler: &mut Compiler<'_>) -> Option<Self> {
        let owner = compiler.step_id().to_string();
        let switch = &config.switch.value;
        if switch.cases.is_empty() {
            compiler.error(&config.switch, "a `switch` needs at least one case".into());
            return None;
        }
        let mut names = std::collections::HashSet::new();
        let mut cases = Vec::with_capacity(switch.cases.len());
        let mut failed = false;
        for (n, case) in switch.cases.iter().enumerate() {
            let name = match &case.name {
                Some(name) => {
                    if !patchbay_config::validate::is_identifier(name) || name.value == DEFAULT {
                        compiler.error(
                            name,
                            format!(
                                "case name `{}` must use letters, digits, `-` and `_`, and not be `{DEFAULT}`",
                                name.value
                            ),
                        );
                        failed = true;
                    }
                    name.value.clone()
                }
                None => format!("case-{}", n + 1),
            };
            if !names.insert(name.clone()) {
                compiler.error(case, format!("case `{name}` is named twice"));
                failed = true;
            }
            if case.steps.is_empty() {
                compiler.error(case, format!("case `{name}` has no steps"));
                failed = true;
            }
            let when = compiler.expr("when", &case.when);
            let steps = compiler.branch(&owner, &name, &case.steps);
            match (when, steps) {
                (Some(when), Some(steps)) => cases.push(Case { name, when, steps }),
                _ => failed = true,
            }
        }
        let default = match &switch.default {
            Some(steps) => match compiler.branch(&owner, DEFAULT, steps) {
                Some(steps) => Some(steps),
                None => {
                    failed = true;
                    None
                }
            },
            None => None,
        };
        (!failed).then_some(Switch { cases, default })
    }
}

#[async_trait]
impl Step for Switch {
    async fn perform(&self, cx: &StepContext<'_>) -> Result<Performed, StepError> {
        for case in &self.cases {
            if cx
                .condition(&format!("case `{}` when", case.name), &case.when)
                .await?
            {
                return Ok(Performed::output(json!({ "branch": case.name })));
            }
        }
        let branch = self.default.as_ref().map(|_| DEFAULT);
        Ok(Performed::output(json!({ "branch": branch })))
    }

    fn steer(&self, output: &Value) -> Steer<'_> {
        let Some(branch) = output.get("branch").and_then(Value::as_str) else {
            return Steer::Next;
        };
        let steps = self
            .cases
            .iter()
            .find(|case| case.name == branch)
            .map(|case| case.steps.as_slice())
            .or(self.default.as_deref().filter(|_| branch == DEFAULT));
        match steps {
            Some(steps) => Steer::Enter(steps),
            None => Steer::Next,
        }
    }

    fn describe(&self) -> Description {
        let mut branches: Vec<(String, Vec<StepPlan>)> = self
            .cases
            .iter()
            .map(|case| (case.name.clone(), case.steps.clone()))
            .collect();
        if let Some(default) = &self.default {
            branches.push((DEFAULT.into(), default.clone()));
        }
        Description {
            expression: Some(
                self.cases
                    .iter()
                    .map(|case| format!("{}: {}", case.name, case.when.source()))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            branches,
            ..Description::default()
        }
    }
}
