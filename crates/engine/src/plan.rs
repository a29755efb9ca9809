//! Flow plans: a project's flows compiled into what the executor runs.
//!
//! Compiling is where every jq expression and path template is parsed, once,
//! at load time, so a typo is a `patchbay check` error with its file and line
//! rather than a failure at 3 a.m. Runtime types here hold no unchecked input.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use patchbay_config::{
    CallSpec, Diagnostic, FlowConfig, Located, OnError, Project, Report, RespondConfig, StepConfig,
    StepKind, TriggerConfig, WebhookMode,
};
use patchbay_config::{Env, HmacAlgorithm, SignatureEncoding, VerifyConfig, interpolate};
use patchbay_connector::redact::Masker;
use patchbay_connector::{Document, Pagination};
use patchbay_expr::{Expr, Template};
use patchbay_signature::{Algorithm, Encoding, HmacScheme, Scheme, TimestampCheck, Verifier};

use crate::caps::Caps;
use crate::evaluate::Limits;
use crate::redaction::Redaction;

const DEFAULT_SYNC_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_FOR_EACH_CONCURRENCY: usize = 4;

/// Every flow of a project, compiled.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The configuration version the plan was compiled from.
    pub version: String,
    pub flows: BTreeMap<String, FlowPlan>,
    /// Each connector's compiled `rate_limit.key`, for those that have one.
    pub rate_keys: HashMap<String, Expr>,
    webhooks: HashMap<String, String>,
    /// Headers never recorded, and webhook secrets (once resolved) never
    /// journalled.
    pub redaction: Redaction,
    /// Budgets of the project's jq evaluations.
    pub expression_limits: Limits,
    /// Size caps and the poison-run limit of `engine:`.
    pub caps: Caps,
}

/// One compiled flow.
#[derive(Clone, Debug)]
pub struct FlowPlan {
    pub name: String,
    pub trigger: TriggerPlan,
    pub steps: Vec<StepPlan>,
    /// Delays before each run-level retry; after the last, the run is dead.
    pub run_retries: Vec<Duration>,
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
    /// The signature every request must carry, when `verify` is set.
    pub verify: Option<Box<VerifyPlan>>,
    /// The event's dedupe key, when `dedupe` is set: evaluated over the
    /// event with `$headers`.
    pub dedupe: Option<Expr>,
}

/// A webhook's signature check. Its secrets are `${env:...}` templates until
/// [`Plan::resolve_secrets`] turns them into a [`Verifier`]; before that no
/// request can pass.
#[derive(Clone, Debug)]
pub struct VerifyPlan {
    pub scheme: Scheme,
    /// As written, references unresolved; never the secret values.
    secrets: Vec<String>,
    verifier: Option<Verifier>,
}

impl VerifyPlan {
    /// The verifier with resolved secrets; `None` until the engine has
    /// resolved them.
    pub fn verifier(&self) -> Option<&Verifier> {
        self.verifier.as_ref()
    }
}

/// A webhook secret that cannot be used. The message names the flow, the
/// scheme and the secret's position or variable, never its value.
#[derive(Debug, thiserror::Error)]
#[error("flow `{flow}`: verify.{scheme}: {reason}")]
pub struct WebhookSecretError {
    pub flow: String,
    pub scheme: &'static str,
    pub reason: String,
}

impl Plan {
    /// Resolves the `${env:...}` references of every webhook's secrets and
    /// builds its verifier. The engine calls it once at start, with the
    /// environment the project was loaded with.
    pub fn resolve_secrets(&mut self, env: &dyn Env) -> Result<(), WebhookSecretError> {
        for flow in self.flows.values_mut() {
            let TriggerPlan::Webhook(WebhookPlan {
                verify: Some(verify),
                ..
            }) = &mut flow.trigger
            else {
                continue;
            };
            let error = |reason: String| WebhookSecretError {
                flow: flow.name.clone(),
                scheme: verify.scheme.name(),
                reason,
            };
            let secrets = verify
                .secrets
                .iter()
                .enumerate()
                .map(|(index, secret)| {
                    interpolate(secret, env)
                        .map_err(|e| error(format!("secret {}: {e}", index + 1)))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let verifier =
                Verifier::new(verify.scheme.clone(), &secrets).map_err(|e| error(e.to_string()))?;
            verify.verifier = Some(verifier);
            // `whsec_` secrets travel base64-encoded after the prefix.
            let shown = secrets
                .iter()
                .flat_map(|s| [s.clone(), s.strip_prefix("whsec_").unwrap_or(s).to_string()]);
            self.redaction.masker.merge(&Masker::new(shown));
        }
        Ok(())
    }
}

/// The signature scheme a `verify:` block describes.
fn scheme(config: &VerifyConfig) -> Scheme {
    let tolerance = |t: &Option<patchbay_config::HumanDuration>| {
        t.map(|t| t.0)
            .unwrap_or(patchbay_signature::DEFAULT_TOLERANCE)
    };
    match config {
        VerifyConfig::StandardWebhooks { tolerance: t, .. } => Scheme::StandardWebhooks {
            tolerance: tolerance(t),
        },
        VerifyConfig::GitHub { .. } => Scheme::GitHub,
        VerifyConfig::Stripe { tolerance: t, .. } => Scheme::Stripe {
            tolerance: tolerance(t),
        },
        VerifyConfig::Hmac {
            header,
            algorithm,
            encoding,
            prefix,
            timestamp_header,
            tolerance: t,
            ..
        } => Scheme::Hmac(HmacScheme {
            header: header.clone(),
            algorithm: match algorithm {
                HmacAlgorithm::Sha256 => Algorithm::Sha256,
                HmacAlgorithm::Sha512 => Algorithm::Sha512,
            },
            encoding: match encoding {
                SignatureEncoding::Hex => Encoding::Hex,
                SignatureEncoding::Base64 => Encoding::Base64,
            },
            prefix: prefix.clone().filter(|p| !p.is_empty()),
            timestamp: timestamp_header.as_ref().map(|header| TimestampCheck {
                header: header.clone(),
                tolerance: tolerance(t),
            }),
        }),
    }
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
    /// What a failure of the step (or of one of its items) does.
    pub on_error: ErrorPolicy,
}

/// A step's compiled `on_error`.
#[derive(Clone, Debug, Default)]
pub enum ErrorPolicy {
    /// Reschedule the run when the failure is transient, else the run is dead.
    #[default]
    Retry,
    /// Run these steps instead; the last one's result is the step's.
    Fallback(Vec<StepPlan>),
    /// Record the error and go on with `{error}` as the step's result.
    Continue,
    /// The run is dead at once.
    Fail,
}

/// What a step does.
#[derive(Clone, Debug)]
pub enum Action {
    Call(CallPlan),
    Graphql(GraphqlPlan),
    Transform(Expr),
    Filter(Expr),
    SetState(Expr),
    Respond(RespondPlan),
}

impl Action {
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Call(_) => "call",
            Action::Graphql(_) => "graphql",
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
    /// With `paginate`: how the next pages are requested and read.
    pub pagination: Option<Pagination>,
}

/// A GraphQL operation sent through a connector.
#[derive(Clone, Debug)]
pub struct GraphqlPlan {
    pub connector: String,
    pub path: String,
    pub document: Document,
    pub variables: Option<Expr>,
    pub headers: Option<Expr>,
    pub idempotency_key: Option<Expr>,
    pub retry: Option<patchbay_connector::RetryPolicy>,
    pub pagination: Option<Pagination>,
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
                run_retries: &project.config.engine.run_retries,
            };
            if let Some(flow) = compiler.flow(&loaded.config) {
                if let TriggerPlan::Webhook(hook) = &flow.trigger {
                    webhooks.insert(hook.path.clone(), name.clone());
                }
                flows.insert(name.clone(), flow);
            }
        }
        let mut rate_keys = HashMap::new();
        for (name, connector) in &project.config.connectors {
            let Some(key) = connector.rate_limit.as_ref().and_then(|r| r.key.as_ref()) else {
                continue;
            };
            match Expr::compile(key) {
                Ok(expr) => {
                    rate_keys.insert(name.clone(), expr);
                }
                Err(e) => report.push(Diagnostic::new(
                    &project.root_file,
                    key.line,
                    key.column,
                    format!("connector `{name}`: invalid jq in `rate_limit.key`: {e}"),
                )),
            }
        }
        report.into_result()?;
        Ok(Plan {
            version: project.version.clone(),
            flows,
            rate_keys,
            webhooks,
            redaction: Redaction::new(&project.config.telemetry.redact_headers),
            expression_limits: Limits::new(&project.config.engine.expressions),
            caps: Caps::new(&project.config.engine),
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

/// A step's own retry policy; `None` means its connector's.
fn retry_policy(step: &StepConfig) -> Option<patchbay_connector::RetryPolicy> {
    step.retry
        .as_ref()
        .map(|r| patchbay_connector::RetryPolicy::from(&r.value))
}

struct Compiler<'a> {
    file: &'a Path,
    flow: &'a str,
    report: &'a mut Report,
    /// The project's default run-level retry schedule.
    run_retries: &'a [patchbay_config::HumanDuration],
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
        let run_retries = config
            .run_retries
            .as_deref()
            .unwrap_or(self.run_retries)
            .iter()
            .map(|delay| delay.0)
            .collect();
        (self.report.len() == before).then(|| FlowPlan {
            name: self.flow.to_string(),
            trigger,
            steps,
            run_retries,
        })
    }

    fn trigger(&mut self, trigger: &Located<TriggerConfig>) -> Option<TriggerPlan> {
        Some(match &trigger.value {
            TriggerConfig::Webhook(hook) => {
                let dedupe = match &hook.dedupe {
                    Some(source) => match Expr::compile(source) {
                        Ok(expr) => Some(expr),
                        Err(e) => {
                            let flow = self.flow;
                            self.error(
                                source.line,
                                source.column,
                                format!("flow `{flow}`: invalid jq in `dedupe`: {e}"),
                            );
                            return None;
                        }
                    },
                    None => None,
                };
                TriggerPlan::Webhook(WebhookPlan {
                    path: hook.path.clone(),
                    mode: hook.mode,
                    timeout: hook.timeout.map(|t| t.0).unwrap_or(DEFAULT_SYNC_TIMEOUT),
                    max_body_bytes: hook.max_body_bytes,
                    verify: hook.verify.as_ref().map(|verify| {
                        Box::new(VerifyPlan {
                            scheme: scheme(verify),
                            secrets: verify.secrets().to_vec(),
                            verifier: None,
                        })
                    }),
                    dedupe,
                })
            }
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
                    retry: retry_policy(step),
                    pagination: self.pagination(number, step, false)?,
                })
            }
            StepKind::Transform(e) => Action::Transform(self.expr(number, "transform", e)?),
            StepKind::Filter(e) => Action::Filter(self.expr(number, "filter", e)?),
            StepKind::SetState(e) => Action::SetState(self.expr(number, "set_state", e)?),
            StepKind::Respond(respond) => Action::Respond(self.respond(number, respond)?),
            StepKind::Graphql(graphql) => Action::Graphql(GraphqlPlan {
                connector: graphql.connector.value.clone(),
                path: graphql.path().to_string(),
                document: Document::new(&graphql.document),
                variables: self.optional(
                    number,
                    "graphql.variables",
                    graphql.variables.as_ref(),
                )?,
                headers: self.optional(number, "graphql.headers", graphql.headers.as_ref())?,
                idempotency_key: self.optional(
                    number,
                    "idempotency_key",
                    step.idempotency_key.as_ref(),
                )?,
                retry: retry_policy(step),
                pagination: self.pagination(number, step, true)?,
            }),
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
        let id = step.name(index);
        let on_error = match step.on_error.as_ref().map(|o| &o.value) {
            None | Some(OnError::Retry) => ErrorPolicy::Retry,
            Some(OnError::Continue) => ErrorPolicy::Continue,
            Some(OnError::Fail) => ErrorPolicy::Fail,
            Some(OnError::Fallback(alternatives)) => {
                let mut steps = Vec::with_capacity(alternatives.len());
                for (k, alternative) in alternatives.iter().enumerate() {
                    // Fallback steps share their step's journal position;
                    // their ids keep their entries apart.
                    let mut compiled = self.step(index, alternative)?;
                    if alternative.id.is_none() {
                        compiled.id = format!("{id}-fallback-{}", k + 1);
                    }
                    steps.push(compiled);
                }
                ErrorPolicy::Fallback(steps)
            }
        };
        Some(StepPlan {
            index,
            id,
            action,
            for_each,
            on_error,
        })
    }

    /// `Some(None)` without `paginate`, `None` after reporting its problems.
    fn pagination(
        &mut self,
        number: usize,
        step: &StepConfig,
        graphql: bool,
    ) -> Option<Option<Pagination>> {
        let Some(config) = &step.paginate else {
            return Some(None);
        };
        let compiled = if graphql {
            Pagination::for_graphql(config)
        } else {
            Pagination::for_call(config)
        };
        match compiled {
            Ok(pagination) => Some(Some(pagination)),
            Err(problems) => {
                let flow = self.flow;
                for problem in problems {
                    self.error(
                        problem.line,
                        problem.column,
                        format!("flow `{flow}` step {number}: paginate: {}", problem.message),
                    );
                }
                None
            }
        }
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
