//! `patchbay check DIR`: validate a project and print every problem.

use std::path::PathBuf;

use crate::Outcome;

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
    match super::load_checked(&args.dir, &env) {
        Ok((project, plan)) => {
            // Warnings do not fail the check: the project works as written.
            for warning in patchbay_config::validate::warnings(&project, &env) {
                eprintln!("{warning}");
            }
            println!(
                "ok: {} flow(s), {} connector(s), configuration version {}",
                plan.flows.len(),
                project.config.connectors.len(),
                plan.version
            );
            Ok(Outcome::Success)
        }
        Err(report) => {
            eprintln!("{report}");
            Ok(Outcome::Failure)
        }
    }
}
