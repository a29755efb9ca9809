//! Step kinds: one file per kind, each owning its configuration, its checks,
//! its compiled form and its execution.
//!
//! A kind is a type implementing [`Kind`] (how its YAML keys are read and
//! compiled, with every problem reported at its file and line) and [`Step`]
//! (what it does when a run reaches it). [`KINDS`] lists them; adding a kind
//! is one file plus one line there:
//!
//! ```text
//! step/mod.rs
//!     kind_entry::<call::Call>(),
//! +   kind_entry::<notify::Notify>(),
//! ```
//!
//! Why a trait object rather than an enum of kinds: the executor never needs
//! to know which kind it runs. It asks a step to [`Step::perform`] and then
//! how the result steers the run ([`Step::steer`]: go on, end the run, enter
//! a branch, wait), and everything else (journalling, replay after a crash,
//! `when`, `for_each`, error policies, size caps) is the same for every kind.
//! An enum would put one `match` arm per kind in each of those places; a
//! trait keeps each kind's code in its file. The cost, one boxed future per
//! step, is nothing next to a journal write.
//!
//! The YAML side follows the same split: the configuration crate keeps a
//! step's kind keys as located nodes ([`patchbay_config::Node`]) and each
//! kind reads them into its own `Config` type, so locations survive and a
//! misspelt key is reported by the kind that knows its keys.

mod call;
mod compile;
mod context;
mod contract;
mod deliver;
mod email;
mod exchange;
mod filter;
mod graphql;
mod publish;
mod references;
mod respond;
mod run_flow;
mod set_state;
mod switch;
mod transform;
mod wait;

#[cfg(test)]
mod tests;

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_config::Node;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::failure::StepError;
use crate::responders::SyncReply;

pub(crate) use compile::{Compiler, flow_texts_mention};
pub use compile::{ErrorPolicy, StepPlan};
pub(crate) use context::{StepContext, pairs, scalar_text};
pub use contract::ContractUse;

/// Every step kind. Adding one is a file in this folder and a line here.
static KINDS: &[KindEntry] = &[
    kind_entry::<call::Call>(),
    kind_entry::<graphql::Graphql>(),
    kind_entry::<transform::Transform>(),
    kind_entry::<filter::Filter>(),
    kind_entry::<set_state::SetState>(),
    kind_entry::<respond::Respond>(),
    kind_entry::<switch::Switch>(),
    kind_entry::<wait::Wait>(),
    kind_entry::<run_flow::RunFlow>(),
    kind_entry::<publish::Publish>(),
    kind_entry::<email::Email>(),
    kind_entry::<deliver::Deliver>(),
];

/// A step kind's compile side: the YAML it reads and the step it builds.
pub(crate) trait Kind: Step + Sized + 'static {
    /// The key that names the kind in a step (`call`, `switch`).
    const KEY: &'static str;
    /// Whether `for_each` may fan the step out over items.
    const FANS_OUT: bool = false;
    /// What a fallback step may not be (it stands in for one step, or one
    /// item of it): `false` for kinds that end the run, answer the caller,
    /// set state or steer the run.
    const IN_FALLBACK: bool = true;
    /// Whether the step may have a `fallback`: not for kinds whose outcome
    /// is decided after they perform (a branch, a wait, a child run) or that
    /// answer the caller.
    const TAKES_FALLBACK: bool = true;
    /// The kind's keys, its own key included, as one YAML mapping; serde
    /// reports a misspelt or misplaced key at its line.
    type Config: DeserializeOwned + schemars::JsonSchema;

    /// Builds the step, reporting every problem through `compiler`;
    /// `None` once something was reported.
    fn compile(config: Self::Config, compiler: &mut Compiler<'_>) -> Option<Self>;
}

/// What a kind's [`Step::perform`] produced.
pub(crate) struct Performed {
    /// The step's result: `$steps.ID` for later steps, and its journal entry.
    pub output: Value,
    /// What the journal records of the outbound request, when there was one.
    pub request: Option<Value>,
    /// The answer for a `sync` webhook's caller.
    pub reply: Option<SyncReply>,
}

impl Performed {
    pub fn output(output: Value) -> Performed {
        Performed {
            output,
            request: None,
            reply: None,
        }
    }
}

/// How a step's result (fresh or replayed from the journal) steers the run.
pub(crate) enum Steer<'a> {
    /// On to the next step.
    Next,
    /// The run ends here, `skipped` (a false `filter`).
    EndRun,
    /// Run these steps now (a `switch` branch); the last one's result is
    /// the step's.
    Enter(&'a [StepPlan]),
    /// The run is due again at this instant; it holds no worker meanwhile.
    WaitUntil(DateTime<Utc>),
    /// The step's result is this child run's, once it ends; the run holds
    /// no worker meanwhile.
    AwaitRun(patchbay_store::RunId),
}

/// A compiled step: what the executor runs.
#[async_trait]
pub(crate) trait Step: fmt::Debug + Send + Sync {
    /// Performs the step once (or once for one item of a `for_each`).
    async fn perform(&self, cx: &StepContext<'_>) -> Result<Performed, StepError>;

    /// How a result of this step steers the run. It must depend on the
    /// result alone: a resumed run replays the journalled result through it
    /// and so takes the same branch.
    fn steer(&self, _output: &Value) -> Steer<'_> {
        Steer::Next
    }

    /// The step's own schedule of durable retries, in place of the flow's
    /// `run_retries` when this step fails: the delays before its second,
    /// third... attempt.
    fn retry_schedule(&self) -> Option<std::sync::Arc<[std::time::Duration]>> {
        None
    }

    /// Whether the result becomes the flow's state (`$state`).
    fn sets_state(&self) -> bool {
        false
    }

    /// What the management API shows of the step.
    fn describe(&self) -> Description;
}

/// What the management API and `flows show` show of a step.
#[derive(Clone, Debug, Default)]
pub struct Description {
    pub connector: Option<String>,
    pub method: Option<String>,
    pub path: Option<String>,
    /// The main jq expression (or a `call`'s body, a GraphQL document).
    pub expression: Option<String>,
    pub status: Option<u16>,
    pub paginated: bool,
    /// A `switch`'s branches, by name, in order (`default` last).
    pub branches: Vec<(String, Vec<StepPlan>)>,
    /// The flow a `run_flow` step starts.
    pub runs_flow: Option<String>,
}

/// One registered kind, type-erased.
pub(crate) struct KindEntry {
    pub key: &'static str,
    pub fans_out: bool,
    pub in_fallback: bool,
    pub takes_fallback: bool,
    compile: fn(&Node, &mut Compiler<'_>) -> Option<Box<dyn Step>>,
    schema: fn(&mut schemars::SchemaGenerator) -> schemars::Schema,
}

pub(crate) const fn kind_entry<K: Kind>() -> KindEntry {
    KindEntry {
        key: K::KEY,
        fans_out: K::FANS_OUT,
        in_fallback: K::IN_FALLBACK,
        takes_fallback: K::TAKES_FALLBACK,
        compile: compile_kind::<K>,
        schema: |generator| <K::Config as schemars::JsonSchema>::json_schema(generator),
    }
}

fn compile_kind<K: Kind>(fields: &Node, compiler: &mut Compiler<'_>) -> Option<Box<dyn Step>> {
    let config = match fields.read::<K::Config>() {
        Ok(config) => config,
        Err(e) => {
            let message = match unknown_key(&e.message) {
                Some(key) => misplaced_key::<K>(key),
                None => e.message,
            };
            compiler.error_at(e.line, e.column, message);
            return None;
        }
    };
    K::compile(config, compiler).map(|step| Box::new(step) as Box<dyn Step>)
}

/// The key an "unknown key" error names.
fn unknown_key(message: &str) -> Option<&str> {
    message.strip_prefix("unknown key `")?.split('`').next()
}

/// The message for a key kind `K` does not take: the kind it belongs to, or
/// the closest key a step of kind `K` does take.
fn misplaced_key<K: Kind>(key: &str) -> String {
    let mut generator = schemars::SchemaGenerator::default();
    let keys_of = |schema: schemars::Schema| -> Vec<String> {
        schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|properties| properties.keys().cloned().collect())
            .unwrap_or_default()
    };
    let owners: Vec<String> = kinds()
        .filter(|kind| kind.key != K::KEY)
        .filter(|kind| {
            keys_of((kind.schema)(&mut generator))
                .iter()
                .any(|k| k == key)
        })
        .map(|kind| format!("`{}`", kind.key))
        .collect();
    if !owners.is_empty() {
        return format!(
            "`{key}` only applies to {} steps, not to a `{}` step",
            owners.join(", "),
            K::KEY
        );
    }
    let mut valid = keys_of(<K::Config as schemars::JsonSchema>::json_schema(
        &mut generator,
    ));
    valid.extend(patchbay_config::StepConfig::MODIFIERS.map(String::from));
    let hint = patchbay_config::suggest_closest(key, valid.iter().map(String::as_str))
        .map(|k| format!(" — did you mean `{k}`?"))
        .unwrap_or_default();
    let list: Vec<String> = valid.iter().map(|k| format!("`{k}`")).collect();
    format!(
        "unknown key `{key}`{hint} (a `{}` step takes {})",
        K::KEY,
        list.join(", ")
    )
}

/// Every kind: the built-in ones, and under test the test-only ones.
pub(crate) fn kinds() -> impl Iterator<Item = &'static KindEntry> {
    #[cfg(test)]
    let extra = tests::TEST_KINDS.iter();
    #[cfg(not(test))]
    let extra = [].iter();
    KINDS.iter().chain(extra)
}

/// Completes a configuration schema from `patchbay_config` (which knows
/// neither step nor trigger kinds) with every kind's keys: a step then takes
/// the modifiers, and exactly one kind key with its companions; a trigger
/// one kind key with its settings.
pub fn complete_schema(mut schema: Value) -> Value {
    let mut generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    crate::trigger::complete_schema(&mut schema, &mut generator);
    let mut properties = serde_json::Map::new();
    let mut one_of = Vec::new();
    for kind in kinds() {
        let own = (kind.schema)(&mut generator).to_value();
        if let Some(own) = own.get("properties").and_then(Value::as_object) {
            for (key, value) in own {
                properties.entry(key.clone()).or_insert(value.clone());
            }
        }
        one_of.push(serde_json::json!({ "required": [kind.key] }));
    }
    let definitions = generator.take_definitions(true);
    let Some(defs) = schema.get_mut("$defs").and_then(Value::as_object_mut) else {
        return schema;
    };
    for (name, definition) in definitions {
        defs.entry(name).or_insert(definition);
    }
    if let Some(Value::Object(step)) = defs.get_mut("StepConfig") {
        if let Some(Value::Object(own)) = step.get_mut("properties") {
            own.extend(properties);
        }
        step.insert("additionalProperties".into(), false.into());
        step.insert("oneOf".into(), Value::Array(one_of));
    }
    schema
}
