//! One module per command.

pub mod check;
pub mod demo;
pub mod invoke;
pub mod run;
pub mod runs;
pub mod schema;

use std::path::Path;

use patchbay_config::{Env, Project, Report};
use patchbay_engine::Plan;

/// Loads and fully validates a project: configuration and every jq
/// expression. `check` and `run` share it, so `run` refuses exactly what
/// `check` reports.
pub fn load_checked(dir: &Path, env: &dyn Env) -> Result<(Project, Plan), Report> {
    let project = Project::load(dir, env)?;
    let plan = Plan::compile(&project)?;
    Ok((project, plan))
}
