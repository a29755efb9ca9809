//! One module per command.

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

use patchbay_config::{Env, Project, Report};
use patchbay_engine::Plan;

/// Loads and fully validates a project: configuration and every jq
/// expression. `check` and `run` share it, so `run` refuses exactly what
/// `check` reports.
/// Every problem is reported in one pass: configuration errors do not hide
/// jq errors in flows that did parse.
pub fn load_checked(dir: &Path, env: &dyn Env) -> Result<(Project, Plan), Report> {
    let (project, mut report) = Project::load_partial(dir, env)?;
    match Plan::compile(&project) {
        Ok(plan) if report.is_empty() => Ok((project, plan)),
        Ok(_) => Err(report.sorted()),
        Err(more) => {
            report.extend(more);
            Err(report.sorted())
        }
    }
}
