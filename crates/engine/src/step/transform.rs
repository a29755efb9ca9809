//! `transform: JQ`: the expression's value becomes the step's result.

use async_trait::async_trait;
use patchbay_config::Located;
use patchbay_expr::Expr;
use serde::Deserialize;

use super::{Compiler, Description, Kind, Performed, Step, StepContext};
use crate::failure::StepError;

/// `transform`'s keys.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// jq whose value becomes the step's result.
    transform: Located<String>,
}

#[derive(Debug)]
pub(crate) struct Transform {
    expr: Expr,
}

impl Kind for Transform {
    const KEY: &'static str = "transform";
    const FANS_OUT: bool = true;
    type Config = Config;

    fn compile(config: Config, compiler: &mut Compiler<'_>) -> Option<Self> {
        Some(Transform {
            expr: compiler.expr("transform", &config.transform)?,
        })
    }
}

#[async_trait]
impl Step for Transform {
    async fn perform(&self, cx: &StepContext<'_>) -> Result<Performed, StepError> {
        Ok(Performed::output(cx.eval("transform", &self.expr).await?))
    }

    fn describe(&self) -> Description {
        Description {
            expression: Some(self.expr.source().into()),
            ..Description::default()
        }
    }
}
