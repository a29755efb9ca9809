//! One module per command.

pub mod audit;
pub mod check;
pub mod config;
pub mod connectors;
pub mod dead_letters;
pub mod demo;
pub mod flows;
pub mod invoke;
pub mod run;
pub mod runs;
pub mod schema;
pub mod secrets;
pub mod token;

use std::path::Path;

use patchbay_config::{Diagnostic, Env, Project, Report};
use patchbay_engine::Plan;

/// Loads and fully validates a project: configuration and every jq
/// expression. `check` and `run` share it, so `run` refuses exactly what
/// `check` reports.
/// Every problem is reported in one pass: configuration errors do not hide
/// jq errors in flows that did parse.
pub fn load_checked(dir: &Path, env: &dyn Env) -> Result<(Project, Plan), Report> {
    let (project, mut report) = Project::load_partial(dir, env)?;
    if let Some(files) = &project.config.server.tls
        && let Err(e) = crate::node::load_tls(&project, files)
    {
        report.push(Diagnostic::new(
            &project.root_file,
            0,
            0,
            format!("server.tls: {e}"),
        ));
    }
    match Plan::compile(&project, env) {
        Ok(plan) if report.is_empty() => Ok((project, plan)),
        Ok(_) => Err(report.sorted()),
        Err(more) => {
            report.extend(more);
            Err(report.sorted())
        }
    }
}
