//! Flow configuration: a trigger and the steps it runs.
//!
//! A step is one YAML mapping with exactly one kind key (`call`, `transform`,
//! `filter`, `set_state`, `respond`) plus modifiers (`id`, `for_each`,
//! `concurrency`, `on_error`, and for `call`: `query`, `headers`, `body`). Keeping steps
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
    /// Delays before each run-level retry of a run whose step failed,
    /// replacing `engine.run_retries` for this flow; `[]` disables them.
    #[serde(default)]
    pub run_retries: Option<Vec<HumanDuration>>,
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

/// How a webhook's sender signs its requests. Secrets may use
/// `${env:NAME}`; a list of secrets lets one be rotated (any may match).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum VerifyConfig {
    /// Standard Webhooks (`webhook-id`, `webhook-timestamp`,
    /// `webhook-signature`); secrets are `whsec_` + base64.
    StandardWebhooks {
        secret: SecretList,
        /// Largest distance between the signed timestamp and now, either
        /// way (default `5m`).
        #[serde(default)]
        tolerance: Option<HumanDuration>,
    },
    /// GitHub's `X-Hub-Signature-256: sha256=<hex>`.
    #[serde(rename = "github")]
    GitHub { secret: SecretList },
    /// Stripe's `Stripe-Signature: t=...,v1=...`.
    Stripe {
        secret: SecretList,
        /// Largest distance between `t` and now, either way (default `5m`).
        #[serde(default)]
        tolerance: Option<HumanDuration>,
    },
    /// An HMAC of the body (or of `{timestamp}.{body}`) in one header.
    Hmac {
        secret: SecretList,
        /// The header holding the signature, e.g. `X-Signature`.
        header: String,
        /// `sha256` (default) or `sha512`.
        #[serde(default)]
        algorithm: HmacAlgorithm,
        /// `hex` (default) or `base64`.
        #[serde(default)]
        encoding: SignatureEncoding,
        /// Text before the signature, e.g. `sha256=`.
        #[serde(default)]
        prefix: Option<String>,
        /// A header holding the unix time (seconds) of signing; the signed
        /// content becomes `{timestamp}.{body}`.
        #[serde(default)]
        timestamp_header: Option<String>,
        /// With `timestamp_header`: largest distance from now, either way
        /// (default `5m`).
        #[serde(default)]
        tolerance: Option<HumanDuration>,
    },
}

impl VerifyConfig {
    /// The scheme's key as written in YAML.
    pub fn name(&self) -> &'static str {
        match self {
            VerifyConfig::StandardWebhooks { .. } => "standard_webhooks",
            VerifyConfig::GitHub { .. } => "github",
            VerifyConfig::Stripe { .. } => "stripe",
            VerifyConfig::Hmac { .. } => "hmac",
        }
    }

    /// The configured secrets, uninterpolated.
    pub fn secrets(&self) -> &[String] {
        match self {
            VerifyConfig::StandardWebhooks { secret, .. }
            | VerifyConfig::GitHub { secret }
            | VerifyConfig::Stripe { secret, .. }
            | VerifyConfig::Hmac { secret, .. } => secret.as_slice(),
        }
    }
}

/// One secret, or several while one is being rotated.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum SecretList {
    One(String),
    Many(Vec<String>),
}

impl SecretList {
    pub fn as_slice(&self) -> &[String] {
        match self {
            SecretList::One(secret) => std::slice::from_ref(secret),
            SecretList::Many(secrets) => secrets,
        }
    }
}

/// The digest of a generic HMAC signature.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HmacAlgorithm {
    #[default]
    Sha256,
    Sha512,
}

/// How a generic HMAC signature is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SignatureEncoding {
    #[default]
    Hex,
    Base64,
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

/// One step of a flow. Exactly one of `call`, `graphql`, `transform`,
/// `filter`, `set_state`, `respond` must be given.
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
    /// What happens when the step fails (default `retry`).
    #[serde(default)]
    pub on_error: Option<Located<OnError>>,
    /// Fetch the results of a `call` or `graphql` step page by page.
    #[serde(default)]
    pub paginate: Option<Located<crate::paginate::PaginateConfig>>,
    /// A GraphQL operation sent to a connector; its result is the response's
    /// `data`.
    #[serde(default)]
    pub graphql: Option<Located<crate::paginate::GraphqlConfig>>,
}

/// A step's error policy: what a failure of the step does to the run.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum OnError {
    /// The run is rescheduled on its flow's `run_retries` schedule when the
    /// failure is transient (upstream down, 5xx, 429, timeout, open breaker),
    /// resuming at this step; once the schedule is spent, or at once for an
    /// error that retrying cannot cure, the run is dead.
    #[default]
    Retry,
    /// These steps run instead, with the same input; the last one's result
    /// stands in for the step's.
    // Described as plain steps: `Located` inlines its inner schema, which
    // would recurse forever through a step's own `on_error`.
    Fallback(#[schemars(with = "Vec<StepConfig>")] Vec<Located<StepConfig>>),
    /// The error is recorded and the run goes on; the step's result is
    /// `{error: "..."}`.
    Continue,
    /// The run is dead at once, without run-level retries.
    Fail,
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
    Graphql(&'a Located<crate::paginate::GraphqlConfig>),
}

impl StepKind<'_> {
    pub fn name(&self) -> &'static str {
        match self {
            StepKind::Call(_) => "call",
            StepKind::Transform(_) => "transform",
            StepKind::Filter(_) => "filter",
            StepKind::SetState(_) => "set_state",
            StepKind::Respond(_) => "respond",
            StepKind::Graphql(_) => "graphql",
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
        if let Some(v) = &self.graphql {
            kinds.push(StepKind::Graphql(v));
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
