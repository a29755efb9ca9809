//! Flow configuration: a trigger and the steps it runs.
//!
//! A step is one YAML mapping with exactly one kind key (`call`, `transform`,
//! `switch`, ...) and the keys that go with it (for `call`: `query`,
//! `headers`, `body`...), plus modifiers every step shares (`id`, `when`,
//! `for_each`, `concurrency`, `on_error`). Keeping steps flat, rather than
//! nesting each kind, keeps flows short to read and write. The kinds are the
//! engine's: this crate keeps a step's kind keys as located [`Node`]s, and
//! the engine's kind reads them, reporting the one-kind rule and every
//! kind-specific problem with its location.
//!
//! Every expression is a jq program kept as a located string; the engine
//! compiles them when the project loads.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::duration::HumanDuration;
use crate::located::Located;
use crate::node::Node;

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

/// One step of a flow: the modifiers every step shares, and the keys of its
/// kind (`call` with `query`, `body`...; `transform`; `switch`...), which the
/// engine's step kinds read from [`StepConfig::fields`]. This crate does not
/// know the kinds: each lives in a file of its own in the engine.
#[derive(Clone, Debug, Default)]
pub struct StepConfig {
    /// Name of the step's result in `$steps` (default `step-N`, from 1).
    pub id: Option<Located<String>>,
    /// jq condition: when false or null the step is skipped (its result is
    /// `null`) and the run goes on.
    pub when: Option<Located<String>>,
    /// jq producing an array: the step runs once per item, with the item as
    /// `.`; its result is the array of per-item results, in order.
    pub for_each: Option<Located<String>>,
    /// With `for_each`, how many items run at once (default 4).
    pub concurrency: Option<Located<usize>>,
    /// What happens when the step fails (default `retry`).
    pub on_error: Option<Located<OnError>>,
    /// Every other key, in file order: the kind's own.
    pub fields: Vec<(Located<String>, Node)>,
}

impl StepConfig {
    /// The keys every step may carry, whatever its kind.
    pub const MODIFIERS: [&'static str; 5] = ["id", "when", "for_each", "concurrency", "on_error"];

    /// The step's name in `$steps`: its `id`, or `step-N` for the step at
    /// position `index` (from 0).
    pub fn name(&self, index: usize) -> String {
        match &self.id {
            Some(id) => id.value.clone(),
            None => format!("step-{}", index + 1),
        }
    }

    /// The value of the kind key `key`, when the step has it.
    pub fn field(&self, key: &str) -> Option<&Node> {
        self.fields
            .iter()
            .find(|(k, _)| k.value == key)
            .map(|(_, node)| node)
    }
}

impl<'de> Deserialize<'de> for StepConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(StepVisitor)
    }
}

struct StepVisitor;

impl<'de> serde::de::Visitor<'de> for StepVisitor {
    type Value = StepConfig;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a step: a mapping with one kind key, e.g. `transform: .`")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<StepConfig, A::Error> {
        use serde::de::Error;
        let mut step = StepConfig::default();
        while let Some(key) = map.next_key::<Located<String>>()? {
            let duplicate = || A::Error::custom(format!("duplicate key `{}`", key.value));
            match key.value.as_str() {
                "id" if step.id.is_none() => step.id = Some(map.next_value()?),
                "when" if step.when.is_none() => step.when = Some(map.next_value()?),
                "for_each" if step.for_each.is_none() => step.for_each = Some(map.next_value()?),
                "concurrency" if step.concurrency.is_none() => {
                    step.concurrency = Some(map.next_value()?)
                }
                "on_error" if step.on_error.is_none() => step.on_error = Some(map.next_value()?),
                modifier if Self::is_modifier(modifier) => return Err(duplicate()),
                _ if step.fields.iter().any(|(k, _)| k.value == key.value) => {
                    return Err(duplicate());
                }
                _ => {
                    let value = map.next_value::<Node>()?;
                    step.fields.push((key, value));
                }
            }
        }
        Ok(step)
    }
}

impl StepVisitor {
    fn is_modifier(key: &str) -> bool {
        StepConfig::MODIFIERS.contains(&key)
    }
}

/// The modifiers of a step, for its JSON Schema; the engine adds each kind's
/// keys to it (see `patchbay schema`).
#[derive(JsonSchema)]
#[allow(dead_code)] // Only its schema is used.
struct StepModifiers {
    /// Name of the step's result in `$steps` (default `step-N`, from 1).
    id: Option<String>,
    /// jq condition: when false or null the step is skipped (its result is
    /// `null`) and the run goes on.
    when: Option<String>,
    /// jq producing an array: the step runs once per item, with the item as
    /// `.`; its result is the array of per-item results, in order.
    for_each: Option<String>,
    /// With `for_each`, how many items run at once (default 4).
    concurrency: Option<usize>,
    /// What happens when the step fails (default `retry`).
    on_error: Option<OnError>,
}

impl JsonSchema for StepConfig {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StepConfig".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let mut schema = StepModifiers::json_schema(generator);
        schema.insert(
            "description".into(),
            "One step: the modifiers every step shares, and exactly one kind key with the \
             keys that go with it."
                .into(),
        );
        schema
    }
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
