//! Flow plans: a project's flows compiled into what the executor runs.
//!
//! Compiling is where every jq expression and path template is parsed, once,
//! at load time, so a typo is a `patchbay check` error with its file and line
//! rather than a failure at 3 a.m. Runtime types here hold no unchecked input.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use patchbay_config::Env;
use patchbay_config::{Diagnostic, FlowConfig, Project, Report};
use patchbay_connector::redact::Masker;
use patchbay_expr::Expr;

use crate::caps::Caps;
use crate::contracts::Contracts;
use crate::evaluate::Limits;
use crate::redaction::Redaction;
pub use crate::step::{Description, ErrorPolicy, StepPlan};
pub use crate::trigger::{TriggerPlan, WebhookPlan};

/// Every flow of a project, compiled.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The configuration version the plan was compiled from.
    pub version: String,
    pub flows: BTreeMap<String, FlowPlan>,
    /// Each connector's compiled `rate_limit.key`, for those that have one.
    pub rate_keys: HashMap<String, Expr>,
    /// Each connector's compiled `circuit_breaker.key`, for those that
    /// have one.
    pub breaker_keys: HashMap<String, Expr>,
    webhooks: HashMap<String, String>,
    /// Headers never recorded, and webhook secrets (once resolved) never
    /// journalled.
    pub redaction: Redaction,
    /// Budgets of the project's jq evaluations.
    pub expression_limits: Limits,
    /// Size caps and the poison-run limit of `engine:`.
    pub caps: Caps,
    /// The connectors' contracts (`spec:`).
    pub contracts: Contracts,
    /// What compiling found that works but deserves a look (a field read
    /// from a reply that the contract says may be missing).
    pub warnings: Vec<Diagnostic>,
    /// Where flows depend on their connectors' contracts.
    pub contract_uses: Vec<crate::step::ContractUse>,
}

/// One compiled flow.
#[derive(Clone, Debug)]
pub struct FlowPlan {
    pub name: String,
    pub trigger: TriggerPlan,
    pub steps: Vec<StepPlan>,
    /// Delays before each run-level retry; after the last, the run is dead.
    pub run_retries: Vec<Duration>,
    /// Whether any expression of the flow may read `$state`. When none can,
    /// a run does not read the flow's state from the store: a read per run
    /// that most flows never use.
    pub reads_state: bool,
}

impl Plan {
    /// Compiles every flow of a validated project; all expression errors are
    /// reported together. Webhook secrets are resolved from `env` (the
    /// environment the project was loaded with) into their verifiers, so the
    /// plan is complete.
    pub fn compile(project: &Project, env: &dyn Env) -> Result<Plan, Report> {
        Plan::compile_with(project, Some(env))
    }

    /// Compiles the flows of a version kept only so that its runs can
    /// finish (see `crate::versions`). Its webhooks are never served: their
    /// secrets are not resolved, and their verifiers refuse every request.
    pub(crate) fn compile_for_stored_runs(project: &Project) -> Result<Plan, Report> {
        Plan::compile_with(project, None)
    }

    fn compile_with(project: &Project, env: Option<&dyn Env>) -> Result<Plan, Report> {
        let mut report = Report::default();
        let mut flows = BTreeMap::new();
        let mut webhooks = HashMap::new();
        let mut webhook_secrets = Vec::new();
        let mut contract_uses = Vec::new();
        // A plan kept for stored runs is not held against today's files.
        let contracts = match env {
            Some(_) => Contracts::load(project, &mut report),
            None => Contracts::default(),
        };
        let mut warnings = contracts.warnings.clone();
        for (name, loaded) in &project.flows {
            let mut compiler = Compiler {
                project,
                file: &loaded.file,
                flow: name,
                report: &mut report,
                run_retries: &project.config.engine.run_retries,
                env,
                webhook_secrets: &mut webhook_secrets,
                contracts: &contracts,
                warnings: &mut warnings,
                contract_uses: &mut contract_uses,
            };
            if let Some(flow) = compiler.flow(&loaded.config) {
                if let Some(hook) = flow.trigger.webhook()
                    && let Some(other) = webhooks.insert(hook.path.clone(), name.clone())
                {
                    let trigger = &loaded.config.trigger.value.kind;
                    report.push(Diagnostic::new(
                        &loaded.file,
                        trigger.line,
                        trigger.column,
                        format!(
                            "flow `{name}`: webhook path `{}` is already used by flow `{other}`",
                            hook.path
                        ),
                    ));
                }
                flows.insert(name.clone(), flow);
            }
        }
        let mut rate_keys = HashMap::new();
        let mut breaker_keys = HashMap::new();
        for (name, connector) in &project.config.connectors {
            let rate_key = connector.rate_limit.as_ref().and_then(|r| r.key.as_ref());
            let breaker_key = connector
                .circuit_breaker
                .key
                .as_ref()
                .filter(|_| connector.circuit_breaker.enabled);
            for (key, setting, keys) in [
                (rate_key, "rate_limit.key", &mut rate_keys),
                (breaker_key, "circuit_breaker.key", &mut breaker_keys),
            ] {
                let Some(key) = key else { continue };
                match Expr::compile(key) {
                    Ok(expr) => {
                        keys.insert(name.clone(), expr);
                    }
                    Err(e) => report.push(Diagnostic::new(
                        &project.root_file,
                        key.line,
                        key.column,
                        format!("connector `{name}`: invalid jq in `{setting}`: {e}"),
                    )),
                }
            }
        }
        check_child_cycles(&flows, project, &mut report);
        report.into_result()?;
        let mut redaction = Redaction::new(&project.config.telemetry.redact_headers);
        redaction.masker.merge(&Masker::new(webhook_secrets));
        Ok(Plan {
            version: project.version.clone(),
            flows,
            rate_keys,
            breaker_keys,
            webhooks,
            redaction,
            expression_limits: Limits::new(&project.config.engine.expressions),
            caps: Caps::new(&project.config.engine),
            contracts,
            warnings,
            contract_uses,
        })
    }

    /// The flow a webhook path belongs to.
    pub fn webhook(&self, path: &str) -> Option<(&FlowPlan, &WebhookPlan)> {
        let flow = self.flows.get(self.webhooks.get(path)?)?;
        Some((flow, flow.trigger.webhook()?))
    }
}

struct Compiler<'a> {
    project: &'a Project,
    file: &'a Path,
    flow: &'a str,
    report: &'a mut Report,
    /// The project's default run-level retry schedule.
    run_retries: &'a [patchbay_config::HumanDuration],
    /// Resolves webhook secrets; `None` when the plan is never served.
    env: Option<&'a dyn Env>,
    /// Resolved webhook secrets, masked in what runs record.
    webhook_secrets: &'a mut Vec<String>,
    contracts: &'a Contracts,
    warnings: &'a mut Vec<Diagnostic>,
    contract_uses: &'a mut Vec<crate::step::ContractUse>,
}

impl Compiler<'_> {
    fn flow(&mut self, config: &FlowConfig) -> Option<FlowPlan> {
        let kind = &config.trigger.value.kind;
        let trigger = crate::trigger::compile(
            &config.trigger,
            &mut crate::trigger::TriggerCompiler {
                project: self.project,
                file: self.file,
                flow: self.flow,
                at: (kind.line, kind.column),
                report: self.report,
                env: self.env,
                webhook_secrets: self.webhook_secrets,
            },
        );
        // Whether steps may answer the caller is only known from a trigger
        // that compiled; otherwise they are not judged on it.
        let awaits_reply = trigger.as_ref().map(TriggerPlan::awaits_reply);
        let mut steps_compiler =
            crate::step::Compiler::new(self.project, self.file, self.flow, self.report)
                .awaiting_reply(awaits_reply)
                .with_contracts(self.contracts)
                .with_env(self.env);
        let steps = steps_compiler.flow_steps(&config.steps);
        self.warnings.extend(steps_compiler.take_warnings());
        self.contract_uses.extend(steps_compiler.take_uses());
        let mut steps = steps?;
        if let Some(last) = steps.last_mut() {
            last.ends_flow = true;
        }
        if awaits_reply == Some(true) && !steps.iter().any(answers) {
            let flow = self.flow;
            self.error(
                kind.line,
                kind.column,
                format!("flow `{flow}`: a `sync` webhook needs a `respond` step"),
            );
            return None;
        }
        let run_retries = config
            .run_retries
            .as_deref()
            .unwrap_or(self.run_retries)
            .iter()
            .map(|delay| delay.0)
            .collect();
        Some(FlowPlan {
            name: self.flow.to_string(),
            trigger: trigger?,
            steps,
            run_retries,
            reads_state: self.may_read_state(),
        })
    }

    /// Whether the flow's file, or `patchbay.yaml` (which holds inline
    /// flows and the connectors' `rate_limit.key`, evaluated with a call's
    /// variables), mentions `$state` anywhere. Every expression a run
    /// evaluates is written in one of the two, so a flow whose texts never
    /// name it cannot read it; a mention in a comment only costs the read.
    fn may_read_state(&self) -> bool {
        crate::step::flow_texts_mention(self.project, self.file, |text| {
            patchbay_expr::mentions(text, "$state")
        })
    }

    fn error(&mut self, line: u64, column: u64, message: String) {
        self.report
            .push(Diagnostic::new(self.file, line, column, message));
    }
}

/// Whether a step, or a step of one of its branches, answers a `sync`
/// webhook's caller.
fn answers(step: &StepPlan) -> bool {
    step.kind == "respond"
        || step
            .describe()
            .branches
            .iter()
            .any(|(_, steps)| steps.iter().any(answers))
}

/// The flows each step (branches and fallbacks included) starts with
/// `run_flow`.
fn children(steps: &[StepPlan], found: &mut Vec<String>) {
    for step in steps {
        let described = step.describe();
        found.extend(described.runs_flow);
        for (_, branch) in &described.branches {
            children(branch, found);
        }
        if let ErrorPolicy::Fallback(alternatives) = &step.on_error {
            children(alternatives, found);
        }
    }
}

/// Refuses flows that start themselves through `run_flow`, directly or not:
/// every run would start another, forever.
fn check_child_cycles(flows: &BTreeMap<String, FlowPlan>, project: &Project, report: &mut Report) {
    let edges: BTreeMap<&str, Vec<String>> = flows
        .iter()
        .map(|(name, flow)| {
            let mut found = Vec::new();
            children(&flow.steps, &mut found);
            (name.as_str(), found)
        })
        .collect();
    for start in edges.keys() {
        // Depth-first from each flow, keeping the path to name the cycle.
        let mut stack: Vec<(String, Vec<String>)> =
            vec![(start.to_string(), vec![start.to_string()])];
        let mut seen = std::collections::HashSet::new();
        while let Some((flow, path)) = stack.pop() {
            for child in edges.get(flow.as_str()).into_iter().flatten() {
                if child == start {
                    let file = project
                        .flows
                        .get(*start)
                        .map(|f| f.file.clone())
                        .unwrap_or_default();
                    let cycle = path
                        .iter()
                        .chain(std::iter::once(child))
                        .map(|f| format!("`{f}`"))
                        .collect::<Vec<_>>()
                        .join(" → ");
                    report.push(Diagnostic::new(
                        file,
                        0,
                        0,
                        format!("flow `{start}` starts itself through `run_flow`: {cycle}"),
                    ));
                    stack.clear();
                    break;
                }
                if seen.insert(child.clone()) {
                    let mut next = path.clone();
                    next.push(child.clone());
                    stack.push((child.clone(), next));
                }
            }
        }
    }
}
