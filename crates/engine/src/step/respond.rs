//! `respond: {status, headers, body}`: the answer to a `sync` webhook's
//! caller. The step's result is the answer as sent.

use async_trait::async_trait;
use patchbay_config::Located;
use patchbay_expr::Expr;
use serde::Deserialize;
use serde_json::Value;

use super::{Compiler, Description, Kind, Performed, Step, StepContext};
use crate::failure::StepError;
use crate::responders::SyncReply;

/// `respond`'s keys.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// The answer to a `sync` webhook.
    respond: Located<RespondConfig>,
}

/// The response of a `sync` webhook.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RespondConfig {
    /// HTTP status (default 200).
    #[serde(default = "default_status")]
    status: Located<u16>,
    /// jq producing an object of response headers.
    #[serde(default)]
    headers: Option<Located<String>>,
    /// jq producing the JSON response body (default: `null`, no body).
    #[serde(default)]
    body: Option<Located<String>>,
}

fn default_status() -> Located<u16> {
    Located::unlocated(200)
}

#[derive(Debug)]
pub(crate) struct Respond {
    status: u16,
    headers: Option<Expr>,
    body: Option<Expr>,
}

impl Kind for Respond {
    const KEY: &'static str = "respond";
    const IN_FALLBACK: bool = false;
    const TAKES_FALLBACK: bool = false;
    type Config = Config;

    fn compile(config: Config, compiler: &mut Compiler<'_>) -> Option<Self> {
        let respond = &config.respond.value;
        if !(100..=599).contains(&respond.status.value) {
            let status = respond.status.value;
            compiler.error(
                &respond.status,
                format!("respond status {status} is not an HTTP status"),
            );
            return None;
        }
        if compiler.awaits_reply() == Some(false) {
            let flow = compiler.flow().to_string();
            compiler.error(
                &config.respond,
                format!("`respond` needs flow `{flow}` to have a `sync` webhook trigger"),
            );
            return None;
        }
        Some(Respond {
            status: respond.status.value,
            headers: compiler.optional("respond.headers", respond.headers.as_ref())?,
            body: compiler.optional("respond.body", respond.body.as_ref())?,
        })
    }
}

#[async_trait]
impl Step for Respond {
    async fn perform(&self, cx: &StepContext<'_>) -> Result<Performed, StepError> {
        let headers = match &self.headers {
            Some(expr) => cx.pairs("respond.headers", expr).await?,
            None => Vec::new(),
        };
        let body = match &self.body {
            Some(expr) => cx.eval("respond.body", expr).await?,
            None => Value::Null,
        };
        let output = serde_json::json!({
            "status": self.status,
            "headers": headers
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect::<serde_json::Map<_, _>>(),
            "body": body,
        });
        Ok(Performed {
            output,
            request: None,
            reply: Some(SyncReply::Respond {
                status: self.status,
                headers,
                body,
            }),
        })
    }

    fn describe(&self) -> Description {
        Description {
            status: Some(self.status),
            expression: self.body.as_ref().map(|body| body.source().into()),
            ..Description::default()
        }
    }
}
