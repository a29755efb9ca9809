//! `set_state: JQ`: the expression's value becomes the flow's persistent
//! state (`$state` in later runs), written in the same transaction as the
//! step's journal entry.

use async_trait::async_trait;
use patchbay_config::Located;
use patchbay_expr::Expr;
use serde::Deserialize;

use super::{Compiler, Description, Kind, Performed, Step, StepContext};
use crate::failure::StepError;

/// `set_state`'s keys.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// jq producing the flow's new persistent state (`$state` in later runs).
    set_state: Located<String>,
}

#[derive(Debug)]
pub(crate) struct SetState {
    expr: Expr,
}

impl Kind for SetState {
    const KEY: &'static str = "set_state";
    const IN_FALLBACK: bool = false;
    type Config = Config;

    fn compile(config: Config, compiler: &mut Compiler<'_>) -> Option<Self> {
        Some(SetState {
            expr: compiler.expr("set_state", &config.set_state)?,
        })
    }
}

#[async_trait]
impl Step for SetState {
    async fn perform(&self, cx: &StepContext<'_>) -> Result<Performed, StepError> {
        let state = cx.eval("set_state", &self.expr).await?;
        cx.executor
            .plan
            .caps
            .check_output("flow state", &state)
            .map_err(StepError::TooLarge)?;
        Ok(Performed::output(state))
    }

    fn sets_state(&self) -> bool {
        true
    }

    fn describe(&self) -> Description {
        Description {
            expression: Some(self.expr.source().into()),
            ..Description::default()
        }
    }
}
