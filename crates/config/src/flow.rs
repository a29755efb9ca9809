//! Flow configuration: a trigger and the steps it runs.
//!
//! A step is one YAML mapping with exactly one kind key (`call`, `transform`,
//! `filter`, `set_state`, `respond`) plus modifiers (`id`, `for_each`,
//! `concurrency`, and for `call`: `query`, `headers`, `body`). Keeping steps
//! flat, rather than nesting each kind, keeps flows short to read and write;
//! [`crate::validate`] enforces the one-kind rule with a located error.
//!
//! Every expression is a jq program kept as a located string; the engine
//! compiles them when the project loads.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::duration::HumanDuration;
use crate::located::Located;

/// One flow: what starts it and what it does.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlowConfig {
    /// What this flow is for, for people reading the project.
    #[serde(default)]
    pub description: Option<String>,
    /// What starts a run.
    pub trigger: Located<TriggerConfig>,
    /// What a run does, in order.
    pub steps: Vec<Located<StepConfig>>,
}

/// What starts a run of a flow.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TriggerConfig {
    /// An HTTP POST on a path of Patchbay's server.
    Webhook(WebhookTrigger),
    /// A cron schedule.
    Schedule(ScheduleTrigger),
    /// Started by hand: `patchbay invoke FLOW --input event.json`.
    Manual(Option<ManualTrigger>),
}

/// An HTTP POST on `path`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookTrigger {
    /// Path on Patchbay's server, e.g. `/hooks/shop/orders`.
    pub path: String,
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

/// A cron schedule: `"*/5 * * * *"`, or with a zone
/// `{cron: "0 9 * * MON-FRI", timezone: Europe/Paris}`. A sixth leading field
/// gives seconds.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ScheduleTrigger {
    /// A cron expression, in UTC.
    Cron(String),
    /// A cron expression in a time zone.
    Zoned {
        cron: String,
        /// IANA zone name, e.g. `Europe/Paris` (default `UTC`).
        #[serde(default)]
        timezone: Option<String>,
    },
}

impl ScheduleTrigger {
    pub fn cron(&self) -> &str {
        match self {
            ScheduleTrigger::Cron(cron) | ScheduleTrigger::Zoned { cron, .. } => cron,
        }
    }

    pub fn timezone(&self) -> Option<&str> {
        match self {
            ScheduleTrigger::Cron(_) => None,
            ScheduleTrigger::Zoned { timezone, .. } => timezone.as_deref(),
        }
    }
}

/// Manual trigger; takes no options (write `manual: {}`).
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManualTrigger {}

/// One step of a flow. Exactly one of `call`, `transform`, `filter`,
/// `set_state`, `respond` must be given.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepConfig {
    /// Name of the step's result in `$steps` (default `step-N`, from 1).
    #[serde(default)]
    pub id: Option<Located<String>>,
    /// An HTTP call: `CONNECTOR METHOD /path`, where `{jq}` in the path is
    /// replaced by the expression's value, e.g. `erp PUT /customers/{.id}`.
    /// Its result is `{status, headers, body}`.
    #[serde(default)]
    pub call: Option<Located<String>>,
    /// jq producing an object of query parameters for `call`.
    #[serde(default)]
    pub query: Option<Located<String>>,
    /// jq producing an object of extra request headers for `call`.
    #[serde(default)]
    pub headers: Option<Located<String>>,
    /// jq producing the JSON request body for `call`.
    #[serde(default)]
    pub body: Option<Located<String>>,
    /// jq producing the idempotency key of a `call` (default for `POST` and
    /// `PATCH`: derived from the run id, the step and the item). Retries and
    /// resumed runs send the same key, so the upstream applies the call once.
    #[serde(default)]
    pub idempotency_key: Option<Located<String>>,
    /// Retries of a `call`, replacing its connector's `retry`.
    #[serde(default)]
    pub retry: Option<Located<crate::connector::RetryConfig>>,
    /// jq whose value becomes the step's result.
    #[serde(default)]
    pub transform: Option<Located<String>>,
    /// jq condition; when false or null the run ends, marked `skipped`.
    #[serde(default)]
    pub filter: Option<Located<String>>,
    /// jq producing the flow's new persistent state (`$state` in later runs).
    #[serde(default)]
    pub set_state: Option<Located<String>>,
    /// The answer to a `sync` webhook.
    #[serde(default)]
    pub respond: Option<Located<RespondConfig>>,
    /// jq producing an array: the step runs once per item, with the item as
    /// `.`; its result is the array of per-item results, in order.
    #[serde(default)]
    pub for_each: Option<Located<String>>,
    /// With `for_each`, how many items run at once (default 4).
    #[serde(default)]
    pub concurrency: Option<Located<usize>>,
}

/// The response of a `sync` webhook.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RespondConfig {
    /// HTTP status (default 200).
    #[serde(default = "default_status")]
    pub status: u16,
    /// jq producing an object of response headers.
    #[serde(default)]
    pub headers: Option<Located<String>>,
    /// jq producing the JSON response body (default: `null`, no body).
    #[serde(default)]
    pub body: Option<Located<String>>,
}

fn default_status() -> u16 {
    200
}

/// The kind of a step, with its main expression.
#[derive(Clone, Copy, Debug)]
pub enum StepKind<'a> {
    Call(&'a Located<String>),
    Transform(&'a Located<String>),
    Filter(&'a Located<String>),
    SetState(&'a Located<String>),
    Respond(&'a Located<RespondConfig>),
}

impl StepKind<'_> {
    pub fn name(&self) -> &'static str {
        match self {
            StepKind::Call(_) => "call",
            StepKind::Transform(_) => "transform",
            StepKind::Filter(_) => "filter",
            StepKind::SetState(_) => "set_state",
            StepKind::Respond(_) => "respond",
        }
    }
}

impl StepConfig {
    /// Every kind key present; a valid step has exactly one.
    pub fn kinds(&self) -> Vec<StepKind<'_>> {
        let mut kinds = Vec::with_capacity(1);
        if let Some(v) = &self.call {
            kinds.push(StepKind::Call(v));
        }
        if let Some(v) = &self.transform {
            kinds.push(StepKind::Transform(v));
        }
        if let Some(v) = &self.filter {
            kinds.push(StepKind::Filter(v));
        }
        if let Some(v) = &self.set_state {
            kinds.push(StepKind::SetState(v));
        }
        if let Some(v) = &self.respond {
            kinds.push(StepKind::Respond(v));
        }
        kinds
    }

    /// The step's name in `$steps`: its `id`, or `step-N` for the step at
    /// position `index` (from 0).
    pub fn name(&self, index: usize) -> String {
        match &self.id {
            Some(id) => id.value.clone(),
            None => format!("step-{}", index + 1),
        }
    }
}

/// A parsed `call:` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallSpec {
    pub connector: String,
    pub method: String,
    /// The path template, `{jq}` holes included.
    pub path: String,
}

impl CallSpec {
    const METHODS: [&'static str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

    /// Parses `CONNECTOR METHOD /path`. The path may contain spaces inside
    /// `{jq}` holes, so everything after the method is the path.
    pub fn parse(text: &str) -> Result<CallSpec, String> {
        let text = text.trim();
        let mut parts = text.splitn(3, char::is_whitespace);
        let (Some(connector), Some(method), Some(path)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(format!(
                "`call: {text}` should be `CONNECTOR METHOD /path`, e.g. `crm GET /contacts`"
            ));
        };
        let method = method.to_ascii_uppercase();
        if !Self::METHODS.contains(&method.as_str()) {
            return Err(format!(
                "unknown HTTP method `{method}` in `call: {text}` (use one of {})",
                Self::METHODS.join(", ")
            ));
        }
        let path = path.trim();
        if !path.starts_with('/') {
            return Err(format!("the path in `call: {text}` must start with `/`"));
        }
        Ok(CallSpec {
            connector: connector.to_string(),
            method,
            path: path.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_call_lines() {
        let spec = CallSpec::parse("erp put /customers/{ .id }").unwrap();
        assert_eq!(spec.connector, "erp");
        assert_eq!(spec.method, "PUT");
        assert_eq!(spec.path, "/customers/{ .id }");
        assert!(
            CallSpec::parse("erp")
                .unwrap_err()
                .contains("CONNECTOR METHOD /path")
        );
        assert!(
            CallSpec::parse("erp FETCH /x")
                .unwrap_err()
                .contains("unknown HTTP method")
        );
        assert!(
            CallSpec::parse("erp GET x")
                .unwrap_err()
                .contains("must start with `/`")
        );
    }
}
