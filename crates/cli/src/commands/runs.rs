//! `patchbay runs list|show|replay`: read runs and their journal from the
//! store, and queue dead runs again.
//!
//! These commands open the store file directly, so they work whether or not
//! a node is running: SQLite's WAL lets them read beside a node, and a
//! replayed run is picked up by the next claim of any node on the store.

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
        /// Only runs in this status: queued, running, succeeded, dead, skipped.
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
    /// Queue dead runs again: the given ones, or every dead run (of a flow).
    ///
    /// A replayed run resumes at the step that failed, reusing the recorded
    /// results of the steps before it; `--from-start` runs every step again.
    /// Calls carry the same idempotency keys as before either way.
    Replay {
        /// Run ids to replay.
        #[arg(required_unless_present = "status")]
        ids: Vec<String>,
        /// With `--status dead`: only dead runs of this flow.
        #[arg(long, requires = "status")]
        flow: Option<String>,
        /// Replay every run in this status; only `dead` can be replayed.
        #[arg(long, conflicts_with = "ids")]
        status: Option<String>,
        /// Run every step again instead of resuming at the failed one.
        #[arg(long)]
        from_start: bool,
        /// The project folder (holding patchbay.yaml).
        #[arg(long, short, default_value = ".")]
        project: PathBuf,
    },
}

/// How many runs one replay transaction takes.
const REPLAY_BATCH: u32 = 500;

pub async fn execute(command: RunsCommand) -> anyhow::Result<Outcome> {
    match command {
        RunsCommand::List {
            project,
            flow,
            status,
            limit,
            json,
        } => {
            let status = status.as_deref().map(parse_status).transpose()?;
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
                    "{:<36}  {:<20}  {:<9}  {:<8}  {:<7}  {:<23}  ERROR",
                    "ID", "FLOW", "STATUS", "ATTEMPTS", "RETRIES", "CREATED"
                );
                for run in &runs {
                    println!(
                        "{:<36}  {:<20}  {:<9}  {:<8}  {:<7}  {:<23}  {}",
                        run.id,
                        run.flow,
                        run.status,
                        run.attempts,
                        run.retries,
                        run.created_at.format("%Y-%m-%d %H:%M:%S%.3f"),
                        one_line(run.error.as_deref().unwrap_or(""), 80)
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
        RunsCommand::Replay {
            ids,
            flow,
            status,
            from_start,
            project,
        } => {
            let store = open(&project).await?;
            let (asked, replayed) = match status {
                Some(name) => {
                    if parse_status(&name)? != RunStatus::Dead {
                        anyhow::bail!("only dead runs can be replayed (`--status dead`)");
                    }
                    replay_all_dead(store.as_ref(), flow, from_start).await?
                }
                None => {
                    let ids = ids
                        .iter()
                        .map(|id| {
                            RunId::from_str(id).with_context(|| format!("`{id}` is not a run id"))
                        })
                        .collect::<anyhow::Result<Vec<RunId>>>()?;
                    let replayed = store.replay(&ids, from_start).await?;
                    for id in ids.iter().filter(|id| !replayed.contains(id)) {
                        match store.run(*id).await? {
                            Some(run) => eprintln!("{id}: not replayed, it is {}", run.status),
                            None => eprintln!("{id}: no such run"),
                        }
                    }
                    (ids.len(), replayed)
                }
            };
            for id in &replayed {
                println!("{id}");
            }
            eprintln!(
                "replayed {} of {asked} run(s){}; a running node picks them up at once, \
                 otherwise the next `patchbay run` does",
                replayed.len(),
                if from_start { " from the start" } else { "" }
            );
            Ok(if replayed.len() == asked {
                Outcome::Success
            } else {
                Outcome::Failure
            })
        }
    }
}

/// Replays every dead run (of one flow), a batch at a time. Replayed runs
/// leave the dead status, so each batch lists from the newest again.
async fn replay_all_dead(
    store: &dyn patchbay_store::Store,
    flow: Option<String>,
    from_start: bool,
) -> anyhow::Result<(usize, Vec<RunId>)> {
    let mut replayed = Vec::new();
    let mut asked = 0;
    let mut before = None;
    loop {
        let batch = store
            .list_runs(&RunFilter {
                flow: flow.clone(),
                status: Some(RunStatus::Dead),
                before,
                limit: REPLAY_BATCH,
            })
            .await?;
        let Some(last) = batch.last() else {
            break;
        };
        // Paging by id also steps past a run that a concurrent replay took.
        before = Some(last.id);
        let ids: Vec<RunId> = batch.iter().map(|run| run.id).collect();
        asked += ids.len();
        replayed.extend(store.replay(&ids, from_start).await?);
    }
    Ok((asked, replayed))
}

fn parse_status(name: &str) -> anyhow::Result<RunStatus> {
    RunStatus::parse(name).with_context(|| {
        format!("unknown status `{name}` (queued, running, succeeded, dead, skipped)")
    })
}

/// The first line of a text, cut to `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    let mut out: String = line.chars().take(max).collect();
    if line.chars().count() > max || text.lines().nth(1).is_some() {
        out.push('…');
    }
    out
}

async fn open(dir: &std::path::Path) -> anyhow::Result<std::sync::Arc<dyn patchbay_store::Store>> {
    // Only the store's location is needed: a project whose secrets are not
    // in this shell's environment must still be inspectable.
    let project = match patchbay_config::Project::load_partial(dir, &ProcessEnv) {
        Ok((project, _)) => project,
        Err(report) => anyhow::bail!("cannot load the project:\n{report}"),
    };
    crate::node::open_store(&project).await
}
