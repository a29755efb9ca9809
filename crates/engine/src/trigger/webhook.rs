//! `webhook: {path, methods, mode, timeout, max_body_bytes, verify,
//! dedupe}`: a flow started by an HTTP POST (or, when asked for, a GET) on
//! a path of the server. Compiling checks the
//! path, builds the signature check (see [`crate::verify`]) and the dedupe
//! expression; the server crate serves the path. A path used by two flows
//! is reported when the whole plan is compiled.

use std::time::Duration;

use patchbay_config::{HumanDuration, Located, RESERVED_PATHS, VerifyConfig};
use patchbay_expr::Expr;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Kind, Trigger, TriggerCompiler};
use crate::verify::VerifyPlan;

/// How long a `sync` webhook waits for `respond` by default.
const DEFAULT_SYNC_TIMEOUT: Duration = Duration::from_secs(30);

/// An HTTP POST on `path`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookTrigger {
    /// Path on Patchbay's server, e.g. `/hooks/shop/orders`.
    pub path: Located<String>,
    /// The HTTP methods the path takes: `[POST]` by default; add `GET`
    /// for providers that verify an endpoint with a GET carrying a
    /// challenge (Meta's `hub.challenge`), answered by a `sync` flow's
    /// `respond`. A GET's event is its query string.
    #[serde(default = "default_methods")]
    pub methods: Vec<WebhookMethod>,
    /// `async` (default): answer 202 with the run id once the event is
    /// committed. `sync`: wait for the flow's `respond` step and answer with it.
    #[serde(default)]
    pub mode: WebhookMode,
    /// In `sync` mode, how long to wait for `respond` before answering 504
    /// (the run goes on). Default `30s`.
    #[serde(default)]
    pub timeout: Option<HumanDuration>,
    /// Largest accepted body in bytes; defaults to `server.max_body_bytes`.
    #[serde(default)]
    pub max_body_bytes: Option<usize>,
    /// Signature the sender must put on every request; without it any
    /// request is accepted. Checked before the body is parsed: a request
    /// that fails is answered 401 and creates no run.
    #[serde(default)]
    pub verify: Option<Located<VerifyConfig>>,
    /// jq over the event (with `$headers`) giving its dedupe key, e.g.
    /// `$headers["webhook-id"]`. A string or number: a later event with the
    /// same key is answered with the first one's run. `null`: no dedupe.
    #[serde(default)]
    pub dedupe: Option<Located<String>>,
}

/// An HTTP method a webhook takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum WebhookMethod {
    #[serde(rename = "POST")]
    Post,
    #[serde(rename = "GET")]
    Get,
}

impl WebhookMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookMethod::Post => "POST",
            WebhookMethod::Get => "GET",
        }
    }
}

fn default_methods() -> Vec<WebhookMethod> {
    vec![WebhookMethod::Post]
}

/// How a webhook is answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookMode {
    /// 202 with the run id once the run is committed.
    #[default]
    Async,
    /// The `respond` step's status, headers and body.
    Sync,
}

/// A webhook trigger, as the HTTP edge needs it.
#[derive(Clone, Debug)]
pub struct WebhookPlan {
    pub path: String,
    /// The methods it takes, each once.
    pub methods: Vec<WebhookMethod>,
    pub mode: WebhookMode,
    /// How long a `sync` webhook waits for `respond`.
    pub timeout: Duration,
    /// Per-flow body limit; `None` means the server's default.
    pub max_body_bytes: Option<usize>,
    /// The signature every request must carry, when `verify` is set.
    pub verify: Option<Box<VerifyPlan>>,
    /// The event's dedupe key, when `dedupe` is set: evaluated over the
    /// event with `$headers`.
    pub dedupe: Option<Expr>,
}

impl Kind for WebhookPlan {
    const KEY: &'static str = "webhook";
    type Config = WebhookTrigger;

    fn compile(hook: WebhookTrigger, compiler: &mut TriggerCompiler<'_>) -> Option<Self> {
        // Every part is checked before any stops the flow.
        let path = check_path(&hook.path, compiler);
        let verify = match &hook.verify {
            Some(verify) => crate::verify::compile(
                compiler.file,
                compiler.flow,
                verify,
                compiler.env,
                compiler.webhook_secrets,
                compiler.report,
            )
            .map(|verify| Some(Box::new(verify))),
            None => Some(None),
        };
        let dedupe = match &hook.dedupe {
            Some(source) if source.trim().is_empty() => {
                compiler.error(
                    source.line,
                    source.column,
                    "`dedupe` is empty; remove it or give a jq expression".into(),
                );
                None
            }
            Some(source) => match Expr::compile(source) {
                Ok(expr) => Some(Some(expr)),
                Err(e) => {
                    compiler.error(
                        source.line,
                        source.column,
                        format!("invalid jq in `dedupe`: {e}"),
                    );
                    None
                }
            },
            None => Some(None),
        };
        let methods = if hook.methods.is_empty() {
            compiler.error(
                hook.path.line,
                hook.path.column,
                "`methods` is empty; give at least one of `POST` and `GET`".into(),
            );
            None
        } else {
            let mut methods = hook.methods.clone();
            methods.sort_by_key(|method| method.as_str());
            methods.dedup();
            Some(methods)
        };
        let (path, verify, dedupe, methods) = (path?, verify?, dedupe?, methods?);
        Some(WebhookPlan {
            path,
            methods,
            mode: hook.mode,
            timeout: hook.timeout.map(|t| t.0).unwrap_or(DEFAULT_SYNC_TIMEOUT),
            max_body_bytes: hook.max_body_bytes,
            verify,
            dedupe,
        })
    }
}

/// The path, once it starts with `/` and is not one the server keeps.
fn check_path(path: &Located<String>, compiler: &mut TriggerCompiler<'_>) -> Option<String> {
    if !path.starts_with('/') {
        compiler.error(
            path.line,
            path.column,
            format!("webhook path `{}` must start with `/`", path.value),
        );
        return None;
    }
    if let Some(prefix) = RESERVED_PATHS
        .iter()
        .find(|p| path.value == **p || path.starts_with(&format!("{p}/")))
    {
        compiler.error(
            path.line,
            path.column,
            format!(
                "webhook path `{}` is under `{prefix}`, which Patchbay reserves",
                path.value
            ),
        );
        return None;
    }
    Some(path.value.clone())
}

impl Trigger for WebhookPlan {
    fn describe(&self) -> Map<String, Value> {
        let mode = match self.mode {
            WebhookMode::Async => "async",
            WebhookMode::Sync => "sync",
        };
        let methods: Vec<&str> = self.methods.iter().map(|m| m.as_str()).collect();
        [
            ("path", json!(self.path)),
            ("methods", json!(methods)),
            ("mode", json!(mode)),
            ("verified", json!(self.verify.is_some())),
            ("deduplicated", json!(self.dedupe.is_some())),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect()
    }

    fn webhook(&self) -> Option<&WebhookPlan> {
        Some(self)
    }

    fn awaits_reply(&self) -> bool {
        self.mode == WebhookMode::Sync
    }
}
