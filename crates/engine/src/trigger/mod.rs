//! Triggers: what starts a flow, one file per kind, each owning its YAML
//! keys, its checks, its compiled form and, for a kind that starts runs by
//! itself, the task that does so.
//!
//! - [`webhook`]: an HTTP POST on a path of the server, with its signature
//!   check and dedupe key; the server crate serves it (HTTP is its job).
//! - [`schedule`]: a cron schedule in a time zone, fired by a task of its
//!   own on nodes that run trigger sources.
//! - [`manual`]: started by hand (`patchbay invoke`, the API).
//! - [`nats`]: messages of a NATS JetStream stream, through a durable
//!   consumer, acknowledged once their runs are committed.
//! - [`redis_stream`]: entries of a Redis stream, through a consumer group,
//!   acknowledged once their runs are committed; a dead node's are taken
//!   over.
//! - [`amqp`]: messages of an AMQP 0-9-1 queue (RabbitMQ), acknowledged
//!   once their runs are committed.
//! - [`mqtt`]: messages of an MQTT topic filter, through a persistent
//!   session, acknowledged once their runs are committed.
//! - [`poll`]: an API without webhooks, polled on an interval or a cron
//!   schedule with a cursor; each new item becomes a run.
//! - [`event`]: an alert flow, fired by dead runs and circuit breakers
//!   (see [`crate::alerts`]).
//!
//! A kind implements [`Kind`] (how its settings are read and compiled, with
//! every problem reported at its file and line) and [`Trigger`] (what the
//! rest of the engine asks of a compiled trigger). [`KINDS`] lists them;
//! adding a kind is one file plus one line there:
//!
//! ```text
//! trigger/mod.rs
//!     kind_entry::<manual::Manual>(),
//! +   kind_entry::<kafka::Kafka>(),
//! ```
//!
//! As with step kinds, a trait object rather than an enum: whoever holds a
//! [`TriggerPlan`] asks it what it needs (is it a webhook to serve, does its
//! caller wait for a reply, does it start runs by itself, how does the API
//! describe it) and never matches on the kind. A kind that starts runs by
//! itself (a schedule, a broker subscription) returns
//! its task from [`Trigger::source`]; the engine runs it with a
//! [`SourceContext`] and stops it on shutdown or reload.

mod amqp;
mod event;
mod manual;
mod mqtt;
mod nats;
mod poll;
mod redis_stream;
mod schedule;
mod webhook;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use patchbay_config::{Diagnostic, Env, Located, Node, Report, TriggerConfig};
use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use patchbay_store::Clock;

use crate::intake::Intake;

pub(crate) use amqp::resolve_address as resolve_amqp_address;
pub(crate) use event::AlertSubscription;
pub use event::{EventName, EventTrigger};
pub use manual::ManualTrigger;
pub(crate) use mqtt::{
    Address as MqttAddress, MESSAGE_ID_PROPERTY as MQTT_MESSAGE_ID_PROPERTY,
    resolve_address as resolve_mqtt_address,
};
pub(crate) use nats::resolve_address as resolve_nats_address;
pub(crate) use redis_stream::resolve_address as resolve_redis_address;
pub use schedule::ScheduleTrigger;
pub use webhook::{WebhookMethod, WebhookMode, WebhookPlan, WebhookTrigger};

/// Every trigger kind. Adding one is a file in this folder and a line here.
static KINDS: &[KindEntry] = &[
    kind_entry::<webhook::WebhookPlan>(),
    kind_entry::<schedule::Schedule>(),
    kind_entry::<manual::Manual>(),
    kind_entry::<nats::Nats>(),
    kind_entry::<redis_stream::RedisStream>(),
    kind_entry::<amqp::Amqp>(),
    kind_entry::<mqtt::Mqtt>(),
    kind_entry::<event::AlertSubscription>(),
    kind_entry::<poll::Poll>(),
];

/// Where a broker trigger's consumer (or group), when the trigger creates
/// it, starts in its stream.
#[derive(Clone, Copy, Debug, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Start {
    /// The oldest message the stream still holds.
    #[default]
    All,
    /// The first message published after the consumer is created.
    New,
}

impl Start {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Start::All => "all",
            Start::New => "new",
        }
    }
}

/// A payload as a run's input: its JSON, else its text, `null` when empty.
pub(crate) fn payload_input(payload: &[u8]) -> Value {
    if payload.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(payload)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(payload).into_owned()))
}

/// A broker's address as written at `key`, its `${env:…}` and
/// `${secret:…}` resolved: `Ok(None)` without an environment (the plan
/// never runs, so nothing is resolved), or a sentence naming the problem
/// and the `expected` form, never the address (it may hold a password).
/// An address must start with one of `schemes` and be `valid` for the
/// broker's client.
pub(crate) fn resolve_broker_address(
    key: &str,
    written: &str,
    env: Option<&dyn Env>,
    schemes: &[&str],
    valid: impl Fn(&str) -> bool,
    expected: &str,
) -> Result<Option<String>, String> {
    let Some(env) = env else {
        return Ok(None);
    };
    let url = patchbay_config::interpolate(written, env).map_err(|e| format!("{key}: {e}"))?;
    if schemes.iter().any(|scheme| url.starts_with(scheme)) && valid(&url) {
        Ok(Some(url))
    } else {
        Err(format!("{key} is not {expected}"))
    }
}

/// Runs a broker consumer's sessions until `cx.shutdown`: a session only
/// ends with an error, which is logged (`BROKER consumer stopped;
/// reconnecting`, with `source`, the stream or queue) before the next one
/// starts, after a backoff of 100 ms doubling up to 5 s.
pub(crate) async fn consume_reconnecting<Session, Error>(
    cx: &SourceContext,
    broker: &str,
    source: &str,
    mut session: impl FnMut() -> Session,
) where
    Session: std::future::Future<Output = Result<std::convert::Infallible, Error>>,
    Error: fmt::Display,
{
    const LONGEST_BACKOFF: Duration = Duration::from_secs(5);
    let mut backoff = Duration::from_millis(100);
    loop {
        let ended = tokio::select! {
            ended = session() => ended,
            () = cx.shutdown.cancelled() => return,
        };
        let Err(e) = ended;
        tracing::warn!(flow = %cx.flow, source, error = %e,
            "{broker} consumer stopped; reconnecting");
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = cx.shutdown.cancelled() => return,
        }
        backoff = (backoff * 2).min(LONGEST_BACKOFF);
    }
}

/// A trigger kind's compile side: the settings it reads under its key and
/// the trigger it builds.
pub(crate) trait Kind: Trigger + Sized + 'static {
    /// The key that names the kind under `trigger:` (`webhook`, `schedule`).
    const KEY: &'static str;
    /// The settings under the kind's key; serde reports a misspelt key at
    /// its line.
    type Config: DeserializeOwned + schemars::JsonSchema;

    /// Builds the trigger, reporting every problem through `compiler`;
    /// `None` once something was reported.
    fn compile(config: Self::Config, compiler: &mut TriggerCompiler<'_>) -> Option<Self>;
}

/// A compiled trigger: what the engine and the server ask of it.
pub(crate) trait Trigger: fmt::Debug + Send + Sync {
    /// What the management API shows of the trigger besides its kind.
    fn describe(&self) -> Map<String, Value>;

    /// The webhook the server serves, when the trigger is one.
    fn webhook(&self) -> Option<&WebhookPlan> {
        None
    }

    /// Whether whoever started the run waits for its `respond` step.
    fn awaits_reply(&self) -> bool {
        false
    }

    /// The alert events that fire the flow, when it is an alert flow.
    fn alert(&self) -> Option<&AlertSubscription> {
        None
    }

    /// The task that starts runs of the flow by itself, when the kind has
    /// one; it returns once `cx.shutdown` is cancelled.
    fn source(&self, _cx: SourceContext) -> Option<BoxFuture<'static, ()>> {
        None
    }
}

/// What a trigger's source task starts runs with.
pub(crate) struct SourceContext {
    pub flow: String,
    /// The configuration version the runs it starts execute on.
    pub config_version: String,
    /// Commits each run before the source acknowledges its event.
    pub intake: Intake,
    /// The engine's clock: a source that fires at instants reads it, so
    /// tests run it under paused time.
    pub clock: Arc<dyn Clock>,
    /// The plan's connectors, for a source that calls an API (a poll).
    pub connectors: patchbay_connector::Connectors,
    /// The store, for a source that keeps state between events (a poll's
    /// cursor).
    pub store: Arc<dyn patchbay_store::Store>,
    /// Cancelled on shutdown, and on a reload that replaces the plan.
    pub shutdown: CancellationToken,
    /// The node's membership when several nodes share the store: a source
    /// the broker lets only one client hold at a time (an MQTT session)
    /// runs while this node leads. `None` on a store one node uses.
    pub exclusive: Option<crate::cluster::Membership>,
}

/// What starts a flow: a compiled trigger of some kind.
#[derive(Clone)]
pub struct TriggerPlan {
    kind: &'static str,
    trigger: Arc<dyn Trigger>,
}

impl fmt::Debug for TriggerPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TriggerPlan")
            .field("kind", &self.kind)
            .field("trigger", &self.trigger)
            .finish()
    }
}

impl TriggerPlan {
    /// The kind's key (`webhook`, `schedule`, `manual`); runs it starts
    /// record it as their trigger.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// What the management API shows of the trigger besides its kind.
    pub fn describe(&self) -> Map<String, Value> {
        self.trigger.describe()
    }

    /// The webhook the server serves, when the trigger is one.
    pub fn webhook(&self) -> Option<&WebhookPlan> {
        self.trigger.webhook()
    }

    /// Whether whoever started the run waits for its `respond` step.
    pub fn awaits_reply(&self) -> bool {
        self.trigger.awaits_reply()
    }

    pub(crate) fn source(&self, cx: SourceContext) -> Option<BoxFuture<'static, ()>> {
        self.trigger.source(cx)
    }

    /// The alert events that fire the flow, when it is an alert flow.
    pub(crate) fn alert(&self) -> Option<&AlertSubscription> {
        self.trigger.alert()
    }
}

/// What compiling one flow's trigger needs, and where its problems go.
pub(crate) struct TriggerCompiler<'a> {
    /// The project, for a trigger that names its connectors.
    pub project: &'a patchbay_config::Project,
    pub file: &'a Path,
    pub flow: &'a str,
    /// Where the trigger's kind key is written.
    pub at: (u64, u64),
    pub report: &'a mut Report,
    /// Resolves webhook secrets; `None` when the plan is never served.
    pub env: Option<&'a dyn Env>,
    /// Resolved webhook secrets, masked in what runs record.
    pub webhook_secrets: &'a mut Vec<String>,
}

impl TriggerCompiler<'_> {
    /// Reports a problem of the flow's trigger at `line`:`column`, naming
    /// the flow.
    pub fn error(&mut self, line: u64, column: u64, message: String) {
        let flow = self.flow;
        self.report.push(Diagnostic::new(
            self.file,
            line,
            column,
            format!("flow `{flow}`: {message}"),
        ));
    }

    /// Reports a problem of the trigger as a whole, at its kind key.
    pub fn error_here(&mut self, message: String) {
        let (line, column) = self.at;
        self.error(line, column, message);
    }
}

/// A registered kind, type-erased.
pub(crate) struct KindEntry {
    key: &'static str,
    compile: fn(&Node, &mut TriggerCompiler<'_>) -> Option<Arc<dyn Trigger>>,
    schema: fn(&mut schemars::SchemaGenerator) -> schemars::Schema,
}

pub(crate) const fn kind_entry<K: Kind>() -> KindEntry {
    KindEntry {
        key: K::KEY,
        compile: compile_kind::<K>,
        schema: |generator| <K::Config as schemars::JsonSchema>::json_schema(generator),
    }
}

fn compile_kind<K: Kind>(
    settings: &Node,
    compiler: &mut TriggerCompiler<'_>,
) -> Option<Arc<dyn Trigger>> {
    let config = match settings.read::<K::Config>() {
        Ok(config) => config,
        Err(e) => {
            compiler.error(e.line, e.column, format!("{}: {}", K::KEY, e.message));
            return None;
        }
    };
    K::compile(config, compiler).map(|trigger| Arc::new(trigger) as Arc<dyn Trigger>)
}

/// Every kind: the built-in ones, and under test the test-only ones.
fn kinds() -> impl Iterator<Item = &'static KindEntry> {
    #[cfg(test)]
    let extra = tests::TEST_KINDS.iter();
    #[cfg(not(test))]
    let extra = [].iter();
    KINDS.iter().chain(extra)
}

/// Compiles a flow's trigger; `None` once a problem was reported.
pub(crate) fn compile(
    trigger: &Located<TriggerConfig>,
    compiler: &mut TriggerCompiler<'_>,
) -> Option<TriggerPlan> {
    let kind = &trigger.value.kind;
    let Some(entry) = kinds().find(|entry| entry.key == kind.value) else {
        let keys: Vec<&str> = kinds().map(|entry| entry.key).collect();
        let hint = patchbay_config::suggest_closest(&kind.value, keys.iter().copied())
            .map(|k| format!(" — did you mean `{k}`?"))
            .unwrap_or_default();
        let list: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
        compiler.error(
            kind.line,
            kind.column,
            format!(
                "`{}` is not a trigger kind{hint} (kinds: {})",
                kind.value,
                list.join(", ")
            ),
        );
        return None;
    };
    let trigger = (entry.compile)(&trigger.value.settings, compiler)?;
    Some(TriggerPlan {
        kind: entry.key,
        trigger,
    })
}

/// Completes a configuration schema from `patchbay_config` (which does not
/// know the trigger kinds) with every kind's settings under its key.
pub(crate) fn complete_schema(schema: &mut Value, generator: &mut schemars::SchemaGenerator) {
    let mut properties = Map::new();
    for kind in kinds() {
        properties.insert(kind.key.into(), (kind.schema)(generator).to_value());
    }
    if let Some(Value::Object(trigger)) = schema
        .get_mut("$defs")
        .and_then(|defs| defs.get_mut("TriggerConfig"))
    {
        trigger.insert("properties".into(), Value::Object(properties));
        trigger.insert("additionalProperties".into(), false.into());
    }
}
