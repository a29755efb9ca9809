//! [`Build`]: a project loaded, validated, compiled and built. Everything a
//! node serves, before any socket, store or task.
//!
//! `patchbay check` stops at a [`Build`] and `patchbay run` starts from one
//! (as do `invoke`, the demo and every reload), so `run` refuses at start
//! nothing that `check` lets through. Building goes through three stages,
//! and each adds its problems to one report, so a single pass shows them
//! all:
//!
//! 1. loading (`Project::load_partial`): every file deserialized, part by
//!    part, then the cross-field rules, with file, line and column;
//! 2. compiling the [`Plan`]: every jq expression, and each webhook's
//!    secrets resolved into its verifier;
//! 3. building the [`Connectors`]: URLs parsed, headers and credentials
//!    resolved and checked to fit in HTTP headers, TLS files read. Nothing
//!    is sent: no socket is opened and no OAuth 2.0 token is fetched.
//!
//! A connector whose configuration the first stage refused is not built, so
//! that each problem is told once; its build problems show once the first
//! are fixed. Callers may add checks of their own (the server's certificate,
//! read by the binary) with [`Build::load_checking`].
//!
//! Every value of a build is complete: the plan's verifiers hold their
//! secrets and the connectors their credentials. What a running engine adds
//! is only what needs the store: the OAuth 2.0 token store.

use std::collections::HashSet;
use std::path::Path;

use patchbay_config::{Diagnostic, Env, Project, Report, Source};
use patchbay_connector::{BuildError, Connector, Connectors};

use crate::plan::Plan;

/// A project ready to serve: validated, its plan compiled, its connectors
/// built with their credentials.
pub struct Build {
    pub project: Project,
    pub plan: Plan,
    pub connectors: Connectors,
    /// Things that work but deserve a second look (plain `http://` to
    /// another host): `check` prints them, `run` logs them.
    pub warnings: Vec<Diagnostic>,
}

impl Build {
    /// Loads the project in `dir` and builds it; every problem otherwise.
    pub fn load(dir: &Path, env: &dyn Env) -> Result<Build, Report> {
        Build::load_checking(dir, env, |_| Report::default())
    }

    /// [`Build::load`], with `more` checks of the loaded project reported
    /// with the rest.
    pub fn load_checking(
        dir: &Path,
        env: &dyn Env,
        more: impl FnOnce(&Project) -> Report,
    ) -> Result<Build, Report> {
        let (project, report) = Project::load_partial(dir, env)?;
        Build::finish(project, report, env, more)
    }

    /// [`Build::load`], with `adjust` applied to the project before it is
    /// validated and built (see [`Project::load_adjusted`]).
    pub fn load_adjusted(
        dir: &Path,
        env: &dyn Env,
        adjust: impl FnOnce(&mut Project),
    ) -> Result<Build, Report> {
        let (project, report) = Project::load_adjusted(dir, env, adjust)?;
        Build::finish(project, report, env, |_| Report::default())
    }

    /// Builds a project from sources already in memory (the demo ships its
    /// project inside the binary); see [`Project::from_sources`].
    pub fn from_sources(
        dir: &Path,
        root: Source,
        flow_sources: Vec<Source>,
        env: &dyn Env,
    ) -> Result<Build, Report> {
        let (project, report) = Project::from_sources_partial(dir, root, flow_sources, env);
        Build::finish(project, report, env, |_| Report::default())
    }

    fn finish(
        project: Project,
        mut report: Report,
        env: &dyn Env,
        more: impl FnOnce(&Project) -> Report,
    ) -> Result<Build, Report> {
        report.extend(more(&project));
        let plan = Plan::compile(&project, env)
            .map_err(|problems| report.extend(problems))
            .ok();
        let connectors = build_connectors(&project, env, &mut report);
        match (plan, connectors) {
            (Some(plan), Some(connectors)) if report.is_empty() => {
                let mut warnings = patchbay_config::validate::warnings(&project, env);
                warnings.extend(plan.warnings.iter().cloned());
                Ok(Build {
                    project,
                    plan,
                    connectors,
                    warnings,
                })
            }
            _ => Err(report.sorted()),
        }
    }
}

/// Builds every connector of `project`, or reports why each that cannot be
/// built cannot (skipping those whose configuration `report` refused).
fn build_connectors(project: &Project, env: &dyn Env, report: &mut Report) -> Option<Connectors> {
    let configs = &project.config.connectors;
    let refused: HashSet<String> = report
        .diagnostics
        .iter()
        .filter_map(|d| d.connector.clone())
        .collect();
    let together = if refused.is_empty() {
        match Connectors::build(configs, env) {
            Ok(connectors) => return Some(connectors),
            Err(e) => Some(e),
        }
    } else {
        None
    };
    // `Connectors::build` stops at the first connector that fails: build
    // them one by one to name every one.
    let before = report.len();
    for (name, config) in configs {
        if refused.contains(name) {
            continue;
        }
        if let Err(e) = Connector::build(name, config, env) {
            report.push(located(project, name, config.line, config.column, &e));
        }
    }
    if let Some(e) = together
        && report.len() == before
    {
        report.push(Diagnostic::new(&project.root_file, 0, 0, e.to_string()));
    }
    None
}

/// A build error at its connector's place in `patchbay.yaml`.
fn located(project: &Project, name: &str, line: u64, column: u64, e: &BuildError) -> Diagnostic {
    let message = match e {
        // Names its connector already.
        BuildError::Config { .. } => e.to_string(),
        BuildError::Client(_) => format!("connector `{name}`: {e}"),
    };
    Diagnostic::new(&project.root_file, line, column, message).in_connector(name)
}
