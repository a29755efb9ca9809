//! `patchbay runs list|show`: read runs and their journal from the store.

use std::path::PathBuf;
use std::str::FromStr;

use anyhow::Context;
use patchbay_config::ProcessEnv;
use patchbay_store::{RunFilter, RunId, RunStatus};

use crate::Outcome;

#[derive(Debug, clap::Subcommand)]
pub enum RunsCommand {
    /// List runs, newest first.
    List {
        /// The project folder (holding patchbay.yaml).
        #[arg(long, short, default_value = ".")]
        project: PathBuf,
        /// Only runs of this flow.
        #[arg(long)]
        flow: Option<String>,
        /// Only runs in this status: queued, running, succeeded, failed, skipped.
        #[arg(long)]
        status: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one run with its step journal.
    Show {
        /// The run id.
        id: String,
        /// The project folder (holding patchbay.yaml).
        #[arg(long, short, default_value = ".")]
        project: PathBuf,
    },
}

pub async fn execute(command: RunsCommand) -> anyhow::Result<Outcome> {
    match command {
        RunsCommand::List {
            project,
            flow,
            status,
            limit,
            json,
        } => {
            let status = match status.as_deref() {
                Some(name) => Some(RunStatus::parse(name).with_context(|| {
                    format!("unknown status `{name}` (queued, running, succeeded, failed, skipped)")
                })?),
                None => None,
            };
            let store = open(&project).await?;
            let runs = store
                .list_runs(&RunFilter {
                    flow,
                    status,
                    before: None,
                    limit,
                })
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&runs)?);
            } else {
                println!(
                    "{:<36}  {:<20}  {:<9}  {:<8}  CREATED",
                    "ID", "FLOW", "STATUS", "ATTEMPTS"
                );
                for run in &runs {
                    println!(
                        "{:<36}  {:<20}  {:<9}  {:<8}  {}",
                        run.id,
                        run.flow,
                        run.status,
                        run.attempts,
                        run.created_at.format("%Y-%m-%d %H:%M:%S%.3f")
                    );
                }
            }
            Ok(Outcome::Success)
        }
        RunsCommand::Show { id, project } => {
            let id = RunId::from_str(&id).with_context(|| format!("`{id}` is not a run id"))?;
            let store = open(&project).await?;
            let Some(run) = store.run(id).await? else {
                eprintln!("no run {id}");
                return Ok(Outcome::Failure);
            };
            let journal = store.journal(id).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({ "run": run, "journal": journal })
                )?
            );
            Ok(Outcome::Success)
        }
    }
}

async fn open(dir: &std::path::Path) -> anyhow::Result<std::sync::Arc<dyn patchbay_store::Store>> {
    let project = match patchbay_config::Project::load(dir, &ProcessEnv) {
        Ok(project) => project,
        Err(report) => anyhow::bail!("cannot load the project:\n{report}"),
    };
    crate::node::open_store(&project).await
}
