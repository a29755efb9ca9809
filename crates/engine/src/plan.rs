//! Flow plans: a project's flows compiled into what the executor runs.
//!
//! Compiling is where every jq expression and path template is parsed, once,
//! at load time, so a typo is a `patchbay check` error with its file and line
//! rather than a failure at 3 a.m. Runtime types here hold no unchecked input.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use patchbay_config::{
    CallSpec, Diagnostic, FlowConfig, Located, Project, Report, RespondConfig, StepConfig,
    StepKind, TriggerConfig, WebhookMode,
};
use patchbay_expr::{Expr, Template};

const DEFAULT_SYNC_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_FOR_EACH_CONCURRENCY: usize = 4;

/// Every flow of a project, compiled.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The configuration version the plan was compiled from.
    pub version: String,
    pub flows: BTreeMap<String, FlowPlan>,
    webhooks: HashMap<String, String>,
}

/// One compiled flow.
#[derive(Clone, Debug)]
pub struct FlowPlan {
    pub name: String,
    pub trigger: TriggerPlan,
    pub steps: Vec<StepPlan>,
}

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

/// A webhook trigger, as the HTTP edge needs it.
#[derive(Clone, Debug)]
pub struct WebhookPlan {
    pub path: String,
    pub mode: WebhookMode,
    /// How long a `sync` webhook waits for `respond`.
    pub timeout: Duration,
    /// Per-flow body limit; `None` means the server's default.
    pub max_body_bytes: Option<usize>,
}

/// One compiled step.
#[derive(Clone, Debug)]
pub struct StepPlan {
    /// Position in the flow, from 0.
    pub index: usize,
    /// Name in `$steps`.
    pub id: String,
    pub action: Action,
    /// With `for_each`: the array expression and how many items run at once.
    pub for_each: Option<(Expr, usize)>,
}

/// What a step does.
#[derive(Clone, Debug)]
pub enum Action {
    Call(CallPlan),
    Transform(Expr),
    Filter(Expr),
    SetState(Expr),
    Respond(RespondPlan),
}

impl Action {
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Call(_) => "call",
            Action::Transform(_) => "transform",
            Action::Filter(_) => "filter",
            Action::SetState(_) => "set_state",
            Action::Respond(_) => "respond",
        }
    }
}

/// An HTTP call through a connector.
#[derive(Clone, Debug)]
pub struct CallPlan {
    pub connector: String,
    pub method: String,
    pub path: Template,
    pub query: Option<Expr>,
    pub headers: Option<Expr>,
    pub body: Option<Expr>,
    /// The step's own idempotency key; `None` means the default key.
    pub idempotency_key: Option<Expr>,
    /// The step's retry policy; `None` means the connector's.
    pub retry: Option<patchbay_connector::RetryPolicy>,
}

/// The answer to a `sync` webhook.
#[derive(Clone, Debug)]
pub struct RespondPlan {
    pub status: u16,
    pub headers: Option<Expr>,
    pub body: Option<Expr>,
}

impl Plan {
    /// Compiles every flow of a validated project; all expression errors are
    /// reported together.
    pub fn compile(project: &Project) -> Result<Plan, Report> {
        let mut report = Report::default();
        let mut flows = BTreeMap::new();
        let mut webhooks = HashMap::new();
        for (name, loaded) in &project.flows {
            let mut compiler = Compiler {
                file: &loaded.file,
                flow: name,
                report: &mut report,
            };
            if let Some(flow) = compiler.flow(&loaded.config) {
                if let TriggerPlan::Webhook(hook) = &flow.trigger {
                    webhooks.insert(hook.path.clone(), name.clone());
                }
                flows.insert(name.clone(), flow);
            }
        }
        report.into_result()?;
        Ok(Plan {
            version: project.version.clone(),
            flows,
            webhooks,
        })
    }

    /// The flow a webhook path belongs to.
    pub fn webhook(&self, path: &str) -> Option<(&FlowPlan, &WebhookPlan)> {
        let flow = self.flows.get(self.webhooks.get(path)?)?;
        match &flow.trigger {
            TriggerPlan::Webhook(hook) => Some((flow, hook)),
            TriggerPlan::Schedule { .. } | TriggerPlan::Manual => None,
        }
    }
}

struct Compiler<'a> {
    file: &'a Path,
    flow: &'a str,
    report: &'a mut Report,
}

impl Compiler<'_> {
    fn flow(&mut self, config: &FlowConfig) -> Option<FlowPlan> {
        let trigger = self.trigger(&config.trigger)?;
        let before = self.report.len();
        let steps: Vec<StepPlan> = config
            .steps
            .iter()
            .enumerate()
            .filter_map(|(index, step)| self.step(index, step))
            .collect();
        (self.report.len() == before).then(|| FlowPlan {
            name: self.flow.to_string(),
            trigger,
            steps,
        })
    }

    fn trigger(&mut self, trigger: &Located<TriggerConfig>) -> Option<TriggerPlan> {
        Some(match &trigger.value {
            TriggerConfig::Webhook(hook) => TriggerPlan::Webhook(WebhookPlan {
                path: hook.path.clone(),
                mode: hook.mode,
                timeout: hook.timeout.map(|t| t.0).unwrap_or(DEFAULT_SYNC_TIMEOUT),
                max_body_bytes: hook.max_body_bytes,
            }),
            TriggerConfig::Schedule(schedule) => {
                // Configuration validation reports a bad cron or zone with its
                // location; such a flow is simply left out of the plan here.
                let cron = schedule.cron().parse::<croner::Cron>().ok()?;
                let timezone = schedule
                    .timezone()
                    .unwrap_or("UTC")
                    .parse::<chrono_tz::Tz>()
                    .ok()?;
                TriggerPlan::Schedule {
                    cron: Box::new(cron),
                    timezone,
                }
            }
            TriggerConfig::Manual(_) => TriggerPlan::Manual,
        })
    }

    fn step(&mut self, index: usize, step: &Located<StepConfig>) -> Option<StepPlan> {
        let number = index + 1;
        let kind = *step.kinds().first()?;
        let action = match kind {
            StepKind::Call(call) => {
                let spec = match CallSpec::parse(call) {
                    Ok(spec) => spec,
                    Err(e) => {
                        self.step_error(number, call, e);
                        return None;
                    }
                };
                let path = match Template::parse(&spec.path) {
                    Ok(path) => path,
                    Err(e) => {
                        self.step_error(
                            number,
                            call,
                            format!("invalid jq in the path `{}`: {e}", spec.path),
                        );
                        return None;
                    }
                };
                Action::Call(CallPlan {
                    connector: spec.connector,
                    method: spec.method,
                    path,
                    query: self.optional(number, "query", step.query.as_ref())?,
                    headers: self.optional(number, "headers", step.headers.as_ref())?,
                    body: self.optional(number, "body", step.body.as_ref())?,
                    idempotency_key: self.optional(
                        number,
                        "idempotency_key",
                        step.idempotency_key.as_ref(),
                    )?,
                    retry: step
                        .retry
                        .as_ref()
                        .map(|r| patchbay_connector::RetryPolicy::from(&r.value)),
                })
            }
            StepKind::Transform(e) => Action::Transform(self.expr(number, "transform", e)?),
            StepKind::Filter(e) => Action::Filter(self.expr(number, "filter", e)?),
            StepKind::SetState(e) => Action::SetState(self.expr(number, "set_state", e)?),
            StepKind::Respond(respond) => Action::Respond(self.respond(number, respond)?),
        };
        let for_each = match &step.for_each {
            Some(source) => {
                let expr = self.expr(number, "for_each", source)?;
                let concurrency = step
                    .concurrency
                    .as_ref()
                    .map(|c| c.value)
                    .unwrap_or(DEFAULT_FOR_EACH_CONCURRENCY);
                Some((expr, concurrency))
            }
            None => None,
        };
        Some(StepPlan {
            index,
            id: step.name(index),
            action,
            for_each,
        })
    }

    fn respond(&mut self, number: usize, respond: &Located<RespondConfig>) -> Option<RespondPlan> {
        Some(RespondPlan {
            status: respond.status,
            headers: self.optional(number, "respond.headers", respond.headers.as_ref())?,
            body: self.optional(number, "respond.body", respond.body.as_ref())?,
        })
    }

    /// `Some(None)` when absent, `Some(Some(expr))` when it compiles, `None`
    /// (after reporting) when it does not.
    fn optional(
        &mut self,
        number: usize,
        key: &str,
        source: Option<&Located<String>>,
    ) -> Option<Option<Expr>> {
        match source {
            None => Some(None),
            Some(source) => self.expr(number, key, source).map(Some),
        }
    }

    fn expr(&mut self, number: usize, key: &str, source: &Located<String>) -> Option<Expr> {
        match Expr::compile(source) {
            Ok(expr) => Some(expr),
            Err(e) => {
                self.step_error(number, source, format!("invalid jq in `{key}`: {e}"));
                None
            }
        }
    }

    fn step_error<T>(&mut self, number: usize, at: &Located<T>, message: String) {
        let flow = self.flow;
        self.error(
            at.line,
            at.column,
            format!("flow `{flow}` step {number}: {message}"),
        );
    }

    fn error(&mut self, line: u64, column: u64, message: String) {
        self.report
            .push(Diagnostic::new(self.file, line, column, message));
    }
}
