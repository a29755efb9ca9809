//! `patchbay check DIR`: prepare a project as `run` does (load, validate,
//! compile, build the connectors, read the server's certificate), without
//! the store, sockets or tasks, and print every problem.

use std::path::PathBuf;

use crate::Outcome;
use crate::node::Prepared;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The project folder (holding patchbay.yaml).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
}

pub async fn execute(args: Args) -> anyhow::Result<Outcome> {
    // `${secret:...}` resolves from the project's store when it exists; a
    // store that does not exist yet is not created by a check.
    let env = crate::secrets::project_env(&args.dir).await?;
    match Prepared::load(&args.dir, &env) {
        Ok(prepared) => {
            let build = &prepared.build;
            // Warnings do not fail the check: the project works as written.
            for warning in &build.warnings {
                eprintln!("{warning}");
            }
            crate::outln!(
                "ok: {} flow(s), {} connector(s), configuration version {}",
                build.plan.flows.len(),
                build.project.config.connectors.len(),
                build.plan.version
            );
            Ok(Outcome::Success)
        }
        Err(report) => {
            eprintln!("{report}");
            Ok(Outcome::Failure)
        }
    }
}
