//! `filter: JQ`: when the condition is false or null the run ends here,
//! marked `skipped`. (`when:` skips one step; `filter` ends the run.)

use async_trait::async_trait;
use patchbay_config::Located;
use patchbay_expr::Expr;
use serde::Deserialize;
use serde_json::Value;

use super::{Compiler, Description, Kind, Performed, Steer, Step, StepContext};
use crate::failure::StepError;

/// `filter`'s keys.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// jq condition; when false or null the run ends, marked `skipped`.
    filter: Located<String>,
}

#[derive(Debug)]
pub(crate) struct Filter {
    expr: Expr,
}

impl Kind for Filter {
    const KEY: &'static str = "filter";
    const IN_FALLBACK: bool = false;
    type Config = Config;

    fn compile(config: Config, compiler: &mut Compiler<'_>) -> Option<Self> {
        Some(Filter {
            expr: compiler.expr("filter", &config.filter)?,
        })
    }
}

#[async_trait]
impl Step for Filter {
    async fn perform(&self, cx: &StepContext<'_>) -> Result<Performed, StepError> {
        let pass = cx.condition("filter", &self.expr).await?;
        Ok(Performed::output(Value::Bool(pass)))
    }

    fn steer(&self, output: &Value) -> Steer<'_> {
        match output {
            Value::Bool(false) => Steer::EndRun,
            _ => Steer::Next,
        }
    }

    fn describe(&self) -> Description {
        Description {
            expression: Some(self.expr.source().into()),
            ..Description::default()
        }
    }
}
