//! `wait: 10m` or `wait: {until: JQ}`: a durable timer. The run gives its
//! worker back and is due again at that instant; the instant is journalled
//! first, so a crash or restart during the wait changes nothing, and a wait
//! of a month costs the run's row, not a task.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_config::{HumanDuration, Located};
use patchbay_expr::Expr;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Compiler, Description, Kind, Performed, Steer, Step, StepContext};
use crate::failure::{StepError, type_name};

/// `wait`'s keys.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// How long the run waits (`10m`, `1d`), or `{until: JQ}` giving an
    /// RFC 3339 instant (an instant already past does not wait).
    wait: Located<WaitConfig>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub(crate) enum WaitConfig {
    For(HumanDuration),
    Until {
        /// jq producing an RFC 3339 instant, e.g. `.remind_at`.
        until: String,
    },
}

#[derive(Debug)]
pub(crate) enum Wait {
    For(std::time::Duration),
    Until(Expr),
}

impl Kind for Wait {
    const KEY: &'static str = "wait";
    const IN_FALLBACK: bool = false;
    const TAKES_FALLBACK: bool = false;
    type Config = Config;

    fn compile(config: Config, compiler: &mut Compiler<'_>) -> Option<Self> {
        let at = &config.wait;
        Some(match &config.wait.value {
            WaitConfig::For(duration) => Wait::For(duration.0),
            WaitConfig::Until { until } => {
                let source = Located {
                    value: until.clone(),
                    line: at.line,
                    column: at.column,
                };
                Wait::Until(compiler.expr("wait.until", &source)?)
            }
        })
    }
}

#[async_trait]
impl Step for Wait {
    async fn perform(&self, cx: &StepContext<'_>) -> Result<Performed, StepError> {
        let until = match self {
            Wait::For(duration) => {
                cx.now() + chrono::Duration::from_std(*duration).unwrap_or(chrono::Duration::MAX)
            }
            Wait::Until(expr) => {
                let value = cx.eval("wait.until", expr).await?;
                instant(&value).ok_or_else(|| StepError::InvalidValue {
                    place: "wait.until".into(),
                    expected: "an RFC 3339 instant such as \"2027-01-31T09:00:00Z\"",
                    found: match &value {
                        Value::String(_) => "a string of another form",
                        other => type_name(other),
                    },
                })?
            }
        };
        Ok(Performed::output(json!({ "until": until.to_rfc3339() })))
    }

    fn steer(&self, output: &Value) -> Steer<'_> {
        match output.get("until").and_then(instant) {
            Some(until) => Steer::WaitUntil(until),
            None => Steer::Next,
        }
    }

    fn describe(&self) -> Description {
        Description {
            expression: match self {
                Wait::For(duration) => Some(humantime::format_duration(*duration).to_string()),
                Wait::Until(expr) => Some(expr.source().into()),
            },
            ..Description::default()
        }
    }
}

fn instant(value: &Value) -> Option<DateTime<Utc>> {
    let text = value.as_str()?;
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}
