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
    // A reference to its definition, which the engine completes with every
    // trigger kind (`Located` would inline it).
    #[schemars(with = "TriggerConfig")]
    pub trigger: Located<TriggerConfig>,
    /// What a run does, in order.
    pub steps: Vec<Located<StepConfig>>,
    /// Delays before each run-level retry of a run whose step failed,
    /// replacing `engine.run_retries` for this flow; `[]` disables them.
    #[serde(default)]
    pub run_retries: Option<Vec<HumanDuration>>,
}

/// What starts a run of a flow: exactly one kind key (`webhook`,
/// `schedule`, `manual`...) and its settings. This crate does not know the
/// kinds: each lives in a file of its own in the engine, which reads
/// [`TriggerConfig::settings`] and reports its problems at their lines.
#[derive(Clone, Debug)]
pub struct TriggerConfig {
    /// The kind key, where it is written.
    pub kind: Located<String>,
    /// The kind's settings (`null` for `manual:` written bare).
    pub settings: Node,
}

impl<'de> Deserialize<'de> for TriggerConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(TriggerVisitor)
    }
}

struct TriggerVisitor;

impl<'de> serde::de::Visitor<'de> for TriggerVisitor {
    type Value = TriggerConfig;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a trigger: a mapping with one kind key, e.g. `webhook: {path: /hooks/orders}`")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> Result<TriggerConfig, A::Error> {
        use serde::de::Error;
        let Some(kind) = map.next_key::<Located<String>>()? else {
            return Err(A::Error::custom(
                "a trigger needs a kind, e.g. `webhook: {path: /hooks/orders}` or `manual: {}`",
            ));
        };
        let settings = map.next_value::<Node>()?;
        if let Some(other) = map.next_key::<Located<String>>()? {
            return Err(A::Error::custom(format!(
                "a trigger has one kind, but this one has `{}` and `{}`",
                kind.value, other.value
            )));
        }
        Ok(TriggerConfig { kind, settings })
    }
}

impl JsonSchema for TriggerConfig {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TriggerConfig".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "What starts a run: exactly one kind key with its settings.",
            "type": "object",
            "minProperties": 1,
            "maxProperties": 1,
        })
    }
}

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
