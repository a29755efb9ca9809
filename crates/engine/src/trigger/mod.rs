//! Triggers: what starts a flow, one file per kind, each compiling its
//! configuration into the part of the plan that starts runs.
//!
//! - [`webhook`]: an HTTP POST on a path of the server, with its signature
//!   check and dedupe key; the server crate serves it.
//! - [`schedule`]: a cron schedule in a time zone; the engine's scheduler
//!   fires it.
//! - [`manual`]: started by hand (`patchbay invoke`, the API).
//!
//! Unlike step kinds, triggers are still a closed set: their configuration is
//! an enum of the configuration crate and their plans an enum here, matched
//! where they are served. Adding one today is a variant in each, plus its
//! file here.

mod manual;
mod schedule;
mod webhook;

use std::path::Path;

use patchbay_config::{Diagnostic, Env, Located, Report, TriggerConfig};

pub use webhook::WebhookPlan;

/// What starts a flow.
#[derive(Clone, Debug)]
pub enum TriggerPlan {
    Webhook(WebhookPlan),
    Schedule {
        cron: Box<croner::Cron>,
        timezone: chrono_tz::Tz,
    },
    Manual,
}

/// What compiling one flow's trigger needs, and where its problems go.
pub(crate) struct TriggerCompiler<'a> {
    pub file: &'a Path,
    pub flow: &'a str,
    pub report: &'a mut Report,
    /// Resolves webhook secrets; `None` when the plan is never served.
    pub env: Option<&'a dyn Env>,
    /// Resolved webhook secrets, masked in what runs record.
    pub webhook_secrets: &'a mut Vec<String>,
}

impl TriggerCompiler<'_> {
    pub fn error(&mut self, line: u64, column: u64, message: String) {
        self.report
            .push(Diagnostic::new(self.file, line, column, message));
    }
}

/// Compiles a flow's trigger; `None` once a problem was reported.
pub(crate) fn compile(
    trigger: &Located<TriggerConfig>,
    compiler: &mut TriggerCompiler<'_>,
) -> Option<TriggerPlan> {
    match &trigger.value {
        TriggerConfig::Webhook(hook) => webhook::compile(hook, compiler).map(TriggerPlan::Webhook),
        TriggerConfig::Schedule(schedule) => schedule::compile(schedule),
        TriggerConfig::Manual(_) => Some(manual::compile()),
    }
}
