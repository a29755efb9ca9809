//! Compiling a flow's steps: the modifiers every step shares (`id`, `when`,
//! `for_each`, `concurrency`, `on_error`), then the step's kind, found by its
//! key in [`super::kinds`] and compiled by the kind itself.
//!
//! Every problem is reported, with its file, line and the step's place in
//! the flow (`flow `f` step 2, branch `refund` step 1: ...`), and compiling
//! goes on so that one `check` shows them all.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use patchbay_config::{Diagnostic, Located, Node, OnError, Project, Report, StepConfig};
use patchbay_expr::{Expr, Template};

use super::contract::{Compiled, ContractUse, Reply};
use super::{KindEntry, Step, kinds};
use crate::contracts::Contracts;

const DEFAULT_FOR_EACH_CONCURRENCY: usize = 4;
const MAX_CONCURRENCY: usize = 1024;
/// How deep branches may nest (`switch` in a branch of a `switch`...).
pub const MAX_NESTING: usize = 8;

/// One compiled step.
#[derive(Clone, Debug)]
pub struct StepPlan {
    /// Position of its top-level step in the flow, from 0: steps inside a
    /// branch or a fallback share it, and their ids keep them apart.
    pub index: usize,
    /// Name in `$steps`.
    pub id: String,
    /// The kind's key (`call`, `switch`...).
    pub kind: &'static str,
    pub(crate) action: Arc<dyn Step>,
    /// With `when`: the step runs only when it is true.
    pub when: Option<Expr>,
    /// With `for_each`: the array expression and how many items run at once.
    pub for_each: Option<(Expr, usize)>,
    /// What a failure of the step (or of one of its items) does.
    pub on_error: ErrorPolicy,
    /// Whether this is the flow's last top-level step: its journal entry is
    /// committed with the run's end, in one transaction.
    pub ends_flow: bool,
}

impl StepPlan {
    /// What the management API shows of the step.
    pub fn describe(&self) -> super::Description {
        self.action.describe()
    }
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

/// What compiling one flow's steps needs, and where its problems go.
pub(crate) struct Compiler<'a> {
    pub project: &'a Project,
    file: &'a Path,
    flow: &'a str,
    report: &'a mut Report,
    /// Where the step being compiled sits, for messages (`step 2`,
    /// `step 2, branch `refund` step 1`).
    pub(super) label: String,
    /// Top-level position of the step being compiled.
    index: usize,
    /// Every step id seen in the flow, with the label of its step.
    ids: HashMap<String, String>,
    /// The id of every step of the flow compiled so far, configured or
    /// default, at any depth: what `$steps.ID` may name.
    pub(super) step_ids: HashSet<String>,
    /// The id of the step being compiled.
    step_id: String,
    depth: usize,
    /// Whether the flow's trigger waits for a reply (a `sync` webhook);
    /// `None` when its trigger did not compile.
    awaits_reply: Option<bool>,
    /// Resolves `${env:…}` and `${secret:…}` in a step's settings (a
    /// broker's address); `None` when the plan never runs.
    env: Option<&'a dyn patchbay_config::Env>,
    /// The connectors' contracts; `None` when calls are not checked
    /// against them (a plan kept for stored runs).
    pub(super) contracts: Option<&'a Contracts>,
    /// What the contract says each call step's reply holds, by step id.
    pub(super) replies: HashMap<String, Reply<'a>>,
    /// Every expression compiled in the flow, whose reads are held against
    /// the replies once every step is known.
    pub(super) compiled: Vec<Compiled>,
    /// Steps with `for_each` (their `$steps` entry is an array, and `.` in
    /// their expressions is an item), with the source of their `for_each`.
    pub(super) fanned_out: HashMap<String, String>,
    /// Steps with a `fallback`, whose result may be the fallback's.
    pub(super) with_fallback: HashSet<String>,
    /// Problems that do not stop the flow from running.
    pub(super) warnings: Vec<Diagnostic>,
    /// Where the flow depends on its connectors' contracts.
    pub(super) uses: Vec<ContractUse>,
}

/// Whether `mentions` holds for the flow's file or for `patchbay.yaml`
/// (which holds inline flows and the connectors' `rate_limit.key`,
/// evaluated with a call's variables). Every expression a run evaluates is
/// written in one of the two, so a flow whose texts never name a variable
/// or a field cannot read it; a mention in a comment or a string only makes
/// the answer `true`. A text that is not known counts as a mention.
pub(crate) fn flow_texts_mention(
    project: &Project,
    file: &Path,
    mentions: impl Fn(&str) -> bool,
) -> bool {
    let mentioned = |path: &Path| {
        project
            .sources
            .iter()
            .find(|source| source.path == path)
            .is_none_or(|source| mentions(&source.text))
    };
    mentioned(file) || mentioned(&project.root_file)
}

impl<'a> Compiler<'a> {
    pub fn new(
        project: &'a Project,
        file: &'a Path,
        flow: &'a str,
        report: &'a mut Report,
    ) -> Self {
        Compiler {
            project,
            file,
            flow,
            report,
            label: String::new(),
            index: 0,
            ids: HashMap::new(),
            step_ids: HashSet::new(),
            step_id: String::new(),
            depth: 0,
            awaits_reply: Some(false),
            env: None,
            contracts: None,
            replies: HashMap::new(),
            compiled: Vec::new(),
            fanned_out: HashMap::new(),
            with_fallback: HashSet::new(),
            warnings: Vec::new(),
            uses: Vec::new(),
        }
    }

    /// Holds the flow's calls and reads against the connectors' contracts.
    pub fn with_contracts(mut self, contracts: &'a Contracts) -> Self {
        self.contracts = Some(contracts);
        self
    }

    pub fn with_env(mut self, env: Option<&'a dyn patchbay_config::Env>) -> Self {
        self.env = env;
        self
    }

    /// What resolves `${env:…}` and `${secret:…}`; `None` when the plan
    /// never runs, so what needs it is not resolved (nor checked).
    pub fn env(&self) -> Option<&'a dyn patchbay_config::Env> {
        self.env
    }

    /// The problems found that do not stop the flow from running.
    pub fn take_warnings(&mut self) -> Vec<Diagnostic> {
        std::mem::take(&mut self.warnings)
    }

    /// Where the flow depends on its connectors' contracts.
    pub fn take_uses(&mut self) -> Vec<ContractUse> {
        std::mem::take(&mut self.uses)
    }

    /// Sets whether the flow's trigger waits for a reply; `None` when it is
    /// not known (its trigger did not compile).
    pub fn awaiting_reply(mut self, awaits_reply: Option<bool>) -> Self {
        self.awaits_reply = awaits_reply;
        self
    }

    /// The id of the step being compiled (`$steps.ID`).
    pub fn step_id(&self) -> &str {
        &self.step_id
    }

    /// The flow's name.
    pub fn flow(&self) -> &str {
        self.flow
    }

    /// Whether the flow's expressions may read a field named `field` of
    /// some value (see [`patchbay_expr::mentions_field`]).
    pub fn flow_reads_field(&self, field: &str) -> bool {
        flow_texts_mention(self.project, self.file, |text| {
            patchbay_expr::mentions_field(text, field)
        })
    }

    /// Compiles a flow's top-level steps, then holds what they read against
    /// the contracts of the calls they read from.
    pub fn flow_steps(&mut self, steps: &[Located<StepConfig>]) -> Option<Vec<StepPlan>> {
        let before = self.report.len();
        let compiled: Vec<StepPlan> = steps
            .iter()
            .enumerate()
            .filter_map(|(index, step)| {
                self.index = index;
                self.label = format!("step {}", index + 1);
                self.step(step, step.name(index))
            })
            .collect();
        self.check_step_references();
        self.check_reads();
        (self.report.len() == before).then_some(compiled)
    }

    /// Where the step being compiled sits, for messages.
    pub(super) fn label(&self) -> &str {
        &self.label
    }

    /// The file of the flow being compiled.
    pub(super) fn file(&self) -> &Path {
        self.file
    }

    /// Compiles the steps of a branch named `branch` of the step being
    /// compiled; their default ids are `STEP-BRANCH-N`.
    pub fn branch(
        &mut self,
        owner: &str,
        branch: &str,
        steps: &[Located<StepConfig>],
    ) -> Option<Vec<StepPlan>> {
        if self.depth >= MAX_NESTING {
            let at = steps.first().map(|s| (s.line, s.column)).unwrap_or((0, 0));
            self.error_at(
                at.0,
                at.1,
                format!("branches nest deeper than {MAX_NESTING} levels"),
            );
            return None;
        }
        let outer = self.label.clone();
        self.depth += 1;
        let before = self.report.len();
        let mut compiled = Vec::with_capacity(steps.len());
        for (n, step) in steps.iter().enumerate() {
            self.label = format!("{outer}, branch `{branch}` step {}", n + 1);
            let id = match &step.id {
                Some(id) => id.value.clone(),
                None => format!("{owner}-{branch}-{}", n + 1),
            };
            compiled.extend(self.step(step, id));
        }
        self.depth -= 1;
        self.label = outer;
        (self.report.len() == before).then_some(compiled)
    }

    fn step(&mut self, step: &Located<StepConfig>, id: String) -> Option<StepPlan> {
        let before = self.report.len();
        self.step_ids.insert(id.clone());
        self.check_id(step);
        let kind = self.kind_of(step)?;
        let fields = Node::mapping(step, step.fields.clone());
        // Branches and fallbacks compile steps of their own: the outer id is
        // set again after each, and restored for the step around this one.
        let outer = std::mem::replace(&mut self.step_id, id.clone());
        let action = (kind.compile)(&fields, self);
        self.step_id = id.clone();
        let when = self.optional("when", step.when.as_ref());
        let for_each = self.for_each(step, kind);
        let on_error = self.on_error(step, kind, &id);
        self.step_id = outer;
        if self.report.len() != before {
            return None;
        }
        Some(StepPlan {
            index: self.index,
            id,
            kind: kind.key,
            action: Arc::from(action?),
            when: when?,
            for_each: for_each?,
            on_error: on_error?,
            ends_flow: false,
        })
    }

    /// The step's kind: exactly one kind key must be present.
    fn kind_of(&mut self, step: &Located<StepConfig>) -> Option<&'static KindEntry> {
        let present: Vec<&'static KindEntry> = kinds()
            .filter(|kind| step.field(kind.key).is_some())
            .collect();
        match present.as_slice() {
            [kind] => Some(kind),
            [] => {
                let known: Vec<String> = kinds().map(|k| format!("`{}`", k.key)).collect();
                let unknown = step.fields.first().map(|(key, _)| key);
                let message = match unknown {
                    Some(key) => {
                        let hint =
                            patchbay_config::suggest_closest(&key.value, kinds().map(|k| k.key))
                                .map(|k| format!(" — did you mean `{k}`?"))
                                .unwrap_or_default();
                        format!(
                            "`{}` is not a step kind{hint}; a step needs one of {}",
                            key.value,
                            known.join(", ")
                        )
                    }
                    None => format!("a step needs one of {}", known.join(", ")),
                };
                let at = unknown
                    .map(|k| (k.line, k.column))
                    .unwrap_or((step.line, step.column));
                self.error_at(at.0, at.1, message);
                None
            }
            many => {
                let names: Vec<String> = many.iter().map(|k| format!("`{}`", k.key)).collect();
                self.error(
                    step,
                    format!(
                        "a step has exactly one kind, found {}; split it into several steps",
                        names.join(", ")
                    ),
                );
                None
            }
        }
    }

    fn check_id(&mut self, step: &Located<StepConfig>) {
        let Some(id) = &step.id else {
            return;
        };
        if !patchbay_config::validate::is_identifier(id) {
            self.error(
                id,
                format!(
                    "step id `{}` may only use letters, digits, `-` and `_`",
                    id.value
                ),
            );
        }
        if let Some(first) = self.ids.insert(id.value.clone(), self.label.clone()) {
            self.error(
                id,
                format!("step id `{}` is already used by {first}", id.value),
            );
        }
    }

    /// `Some(None)` without `for_each`, `None` after reporting.
    fn for_each(
        &mut self,
        step: &Located<StepConfig>,
        kind: &KindEntry,
    ) -> Option<Option<(Expr, usize)>> {
        if let Some(concurrency) = &step.concurrency {
            if step.for_each.is_none() {
                self.error(concurrency, "`concurrency` needs `for_each`".into());
            } else if concurrency.value == 0 || concurrency.value > MAX_CONCURRENCY {
                self.error(
                    concurrency,
                    format!("`concurrency` must be between 1 and {MAX_CONCURRENCY}"),
                );
            }
        }
        let Some(source) = &step.for_each else {
            return Some(None);
        };
        self.fanned_out
            .insert(self.step_id.clone(), source.value.clone());
        if !kind.fans_out {
            let fanning: Vec<String> = kinds()
                .filter(|k| k.fans_out)
                .map(|k| format!("`{}`", k.key))
                .collect();
            self.error(
                source,
                format!("`for_each` applies to {} steps", fanning.join(", ")),
            );
            return None;
        }
        let expr = self.expr("for_each", source)?;
        let concurrency = step
            .concurrency
            .as_ref()
            .map(|c| c.value)
            .unwrap_or(DEFAULT_FOR_EACH_CONCURRENCY);
        Some(Some((expr, concurrency)))
    }

    fn on_error(
        &mut self,
        step: &Located<StepConfig>,
        kind: &KindEntry,
        id: &str,
    ) -> Option<ErrorPolicy> {
        let Some(on_error) = &step.on_error else {
            return Some(ErrorPolicy::Retry);
        };
        Some(match &on_error.value {
            OnError::Retry => ErrorPolicy::Retry,
            OnError::Continue => ErrorPolicy::Continue,
            OnError::Fail => ErrorPolicy::Fail,
            OnError::Fallback(alternatives) => {
                self.with_fallback.insert(id.to_string());
                if alternatives.is_empty() {
                    self.error(on_error, "`fallback` needs at least one step".into());
                    return None;
                }
                if !kind.takes_fallback {
                    self.error(
                        on_error,
                        format!("a `{}` step cannot have a `fallback`", kind.key),
                    );
                    return None;
                }
                let outer = self.label.clone();
                let mut steps = Vec::with_capacity(alternatives.len());
                let mut failed = false;
                for (k, alternative) in alternatives.iter().enumerate() {
                    self.label = format!("{outer} fallback {}", k + 1);
                    self.check_fallback(alternative);
                    // Fallback steps share their step's journal position;
                    // their ids keep their entries apart.
                    let id = match &alternative.id {
                        Some(own) => own.value.clone(),
                        None => format!("{id}-fallback-{}", k + 1),
                    };
                    match self.step(alternative, id) {
                        Some(compiled) => steps.push(compiled),
                        None => failed = true,
                    }
                }
                self.label = outer;
                if failed {
                    return None;
                }
                ErrorPolicy::Fallback(steps)
            }
        })
    }

    /// A fallback runs in the place of one step (or one item of it): it
    /// cannot fan out, end the run, answer the caller or nest fallbacks.
    fn check_fallback(&mut self, alternative: &Located<StepConfig>) {
        if let Some(for_each) = &alternative.for_each {
            self.error(for_each, "a fallback step cannot use `for_each`".into());
        }
        if let Some(when) = &alternative.when {
            self.error(when, "a fallback step cannot use `when`".into());
        }
        if let Some(on_error) = &alternative.on_error
            && matches!(on_error.value, OnError::Fallback(_))
        {
            self.error(
                on_error,
                "a fallback step cannot use a nested `fallback`".into(),
            );
        }
        for kind in kinds().filter(|k| !k.in_fallback) {
            if step_has(alternative, kind.key) {
                self.error(
                    alternative,
                    format!("a fallback step cannot use `{}`", kind.key),
                );
            }
        }
    }

    /// Compiles a jq expression found at `key`.
    pub fn expr(&mut self, key: &str, source: &Located<String>) -> Option<Expr> {
        match Expr::compile(source) {
            Ok(expr) => {
                self.compiled.push(Compiled {
                    source: source.clone(),
                    key: key.to_string(),
                    label: self.label.clone(),
                    step_id: self.step_id.clone(),
                });
                Some(expr)
            }
            Err(e) => {
                self.error(source, format!("invalid jq in `{key}`: {e}"));
                None
            }
        }
    }

    /// Records the holes of a path template found at `key` (`call`), so
    /// that what they read is checked with the flow's other expressions.
    pub fn template_holes(&mut self, key: &str, at: &Located<String>, template: &Template) {
        for hole in template.holes() {
            self.compiled.push(Compiled {
                source: Located {
                    value: hole.source().to_string(),
                    line: at.line,
                    column: at.column,
                },
                key: key.to_string(),
                label: self.label.clone(),
                step_id: self.step_id.clone(),
            });
        }
    }

    /// `Some(None)` when absent, `Some(Some(expr))` when it compiles, `None`
    /// (after reporting) when it does not.
    pub fn optional(
        &mut self,
        key: &str,
        source: Option<&Located<String>>,
    ) -> Option<Option<Expr>> {
        match source {
            None => Some(None),
            Some(source) => self.expr(key, source).map(Some),
        }
    }

    /// Reports an unknown connector, with a suggestion; `true` when known
    /// (or when connectors cannot be known: the root file did not parse).
    pub fn known_connector(&mut self, at: &Located<impl Sized>, name: &str) -> bool {
        let connectors = &self.project.config.connectors;
        if !self.project.root_parsed || connectors.contains_key(name) {
            return true;
        }
        let hint = patchbay_config::suggest_closest(name, connectors.keys().map(String::as_str))
            .map(|c| format!(" — did you mean `{c}`?"))
            .unwrap_or_default();
        self.error(at, format!("unknown connector `{name}`{hint}"));
        false
    }

    /// Whether the flow's trigger waits for a reply (a `sync` webhook);
    /// `None` when that is not known because its trigger did not compile.
    pub fn awaits_reply(&self) -> Option<bool> {
        self.awaits_reply
    }

    /// Reports a problem of the step being compiled, at `at`.
    pub fn error<T>(&mut self, at: &Located<T>, message: String) {
        self.error_at(at.line, at.column, message);
    }

    pub fn error_at(&mut self, line: u64, column: u64, message: String) {
        let flow = self.flow;
        let label = &self.label;
        self.report.push(Diagnostic::new(
            self.file,
            line,
            column,
            format!("flow `{flow}` {label}: {message}"),
        ));
    }
}

/// Whether a step carries the kind key `key`.
fn step_has(step: &StepConfig, key: &str) -> bool {
    step.field(key).is_some()
}
