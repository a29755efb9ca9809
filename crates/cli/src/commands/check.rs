//! `patchbay check DIR`: validate a project and print every problem.

use std::path::PathBuf;

use patchbay_config::ProcessEnv;

use crate::Outcome;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The project folder (holding patchbay.yaml).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
}

pub fn execute(args: Args) -> anyhow::Result<Outcome> {
    match super::load_checked(&args.dir, &ProcessEnv) {
        Ok((project, plan)) => {
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
