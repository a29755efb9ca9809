//! `schedule: CRON` or `{cron, timezone}`: a flow fired at the instants of
//! a cron expression, by a task of its own on nodes that run trigger
//! sources. Each firing carries the dedupe key `schedule:FLOW:TIME`, so if
//! several nodes (or a restarted one) fire the same instant, one run exists.

use std::str::FromStr;

use chrono::Utc;
use futures::FutureExt;
use futures::future::BoxFuture;
use patchbay_store::NewRun;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tracing::{info, warn};

use super::{Kind, SourceContext, Trigger, TriggerCompiler};

/// A cron schedule: `"*/5 * * * *"`, or with a zone
/// `{cron: "0 9 * * MON-FRI", timezone: Europe/Paris}`. A sixth leading field
/// gives seconds.
///
/// Read by hand rather than as an untagged enum: serde's untagged enums
/// say only "data did not match any variant", and let an unknown key
/// (`tz:`) through unnoticed.
#[derive(Clone, Debug, JsonSchema)]
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

impl<'de> Deserialize<'de> for ScheduleTrigger {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ScheduleTrigger;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a cron expression in quotes (\"*/5 * * * *\") or `{cron, timezone}`")
            }
            fn visit_str<E: serde::de::Error>(self, cron: &str) -> Result<Self::Value, E> {
                Ok(ScheduleTrigger::Cron(cron.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                #[derive(Deserialize)]
                #[serde(deny_unknown_fields)]
                struct Zoned {
                    cron: String,
                    #[serde(default)]
                    timezone: Option<String>,
                }
                let zoned = Zoned::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(ScheduleTrigger::Zoned {
                    cron: zoned.cron,
                    timezone: zoned.timezone,
                })
            }
        }
        deserializer.deserialize_any(Visitor)
    }
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

/// A compiled schedule.
#[derive(Clone, Debug)]
pub(crate) struct Schedule {
    /// The expression as written, for people (croner normalises its own).
    written: String,
    cron: croner::Cron,
    timezone: chrono_tz::Tz,
}

impl Kind for Schedule {
    const KEY: &'static str = "schedule";
    type Config = ScheduleTrigger;

    fn compile(schedule: ScheduleTrigger, compiler: &mut TriggerCompiler<'_>) -> Option<Self> {
        let cron = croner::Cron::from_str(schedule.cron()).map_err(|e| {
            compiler.error_here(format!(
                "invalid cron expression `{}`: {e}",
                schedule.cron()
            ))
        });
        let zone = schedule.timezone().unwrap_or("UTC");
        let timezone = zone.parse::<chrono_tz::Tz>().map_err(|_| {
            compiler.error_here(format!(
                "unknown time zone `{zone}` (use an IANA name such as `Europe/Paris`)"
            ))
        });
        Some(Schedule {
            written: schedule.cron().to_string(),
            cron: cron.ok()?,
            timezone: timezone.ok()?,
        })
    }
}

impl Trigger for Schedule {
    fn describe(&self) -> Map<String, Value> {
        [
            ("cron", json!(self.written)),
            ("timezone", json!(self.timezone.name())),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect()
    }

    fn source(&self, cx: SourceContext) -> Option<BoxFuture<'static, ()>> {
        Some(self.clone().fire(cx).boxed())
    }
}

impl Schedule {
    /// Fires at every instant of the cron expression until shutdown.
    async fn fire(self, cx: SourceContext) {
        let SourceContext {
            flow,
            config_version,
            intake,
            clock,
            shutdown,
            // Every node fires every schedule; the dedupe key keeps one run.
            exclusive: _,
            connectors: _,
            store: _,
        } = cx;
        loop {
            let now = clock.now().with_timezone(&self.timezone);
            let next = match self.cron.find_next_occurrence(&now, false) {
                Ok(next) => next,
                Err(e) => {
                    warn!(flow = %flow, error = %e, "schedule has no next occurrence; it stops");
                    return;
                }
            };
            let wait = (next - now).to_std().unwrap_or_default();
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = shutdown.cancelled() => return,
            }
            let scheduled_at = next.with_timezone(&Utc);
            let run = NewRun {
                id: uuid::Uuid::now_v7(),
                flow: flow.clone(),
                trigger: Self::KEY.into(),
                input: json!({ "scheduled_at": scheduled_at.to_rfc3339() }),
                headers: json!({}),
                config_version: config_version.clone(),
                dedupe_key: Some(format!(
                    "schedule:{flow}:{}",
                    scheduled_at.timestamp_millis()
                )),
                parent: None,
                lease: None,
            };
            match intake.submit(run).await {
                Ok(outcome) => {
                    info!(flow = %flow, run_id = %outcome.run_id(), "schedule fired")
                }
                Err(e) => warn!(flow = %flow, error = %e, "scheduled run not committed"),
            }
        }
    }
}
