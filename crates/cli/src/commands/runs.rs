//! `patchbay runs list|show|replay|cancel`: read runs and their journal,
//! queue dead runs again, cancel runs.
//!
//! By default these commands open the store file directly, so they work
//! whether or not a node is running: SQLite's WAL lets them read beside a
//! node, and a replayed run is picked up by the next claim of any node on
//! the store. With `--url` they go through a running node's management API
//! instead (token in `PATCHBAY_TOKEN`), which also works for a node on
//! another machine.

use std::path::PathBuf;
use std::str::FromStr;

use anyhow::Context;
use patchbay_config::ProcessEnv;
use patchbay_store::{CancelOutcome, RunFilter, RunId, RunStatus};

use crate::Outcome;
use crate::remote::{Remote, RemoteArgs, print, query, segment};

#[derive(Debug, clap::Subcommand)]
pub enum RunsCommand {
    /// List runs, newest first.
    List {
        /// The project folder (holding patchbay.yaml).
        #[arg(long, short, default_value = ".")]
        project: PathBuf,
        /// Ask a running node's API instead of opening the store file.
        #[arg(long, conflicts_with = "project")]
        url: Option<String>,
        /// Only runs of this flow.
        #[arg(long)]
        flow: Option<String>,
        /// Only runs in this status: queued, running, succeeded, dead, skipped, cancelled.
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
        /// Ask a running node's API instead of opening the store file.
        #[arg(long, conflicts_with = "project")]
        url: Option<String>,
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
        /// Ask a running node's API instead of opening the store file.
        #[arg(long, conflicts_with = "project")]
        url: Option<String>,
    },
    /// Cancel queued or running runs. A running run stops at its next step
    /// boundary; a run that already ended is left as it is.
    Cancel {
        #[arg(required = true)]
        ids: Vec<String>,
        /// The project folder (holding patchbay.yaml).
        #[arg(long, short, default_value = ".")]
        project: PathBuf,
        /// Ask a running node's API instead of opening the store file.
        #[arg(long, conflicts_with = "project")]
        url: Option<String>,
    },
}

impl RunsCommand {
    fn remote(url: &Option<String>) -> anyhow::Result<Option<Remote>> {
        url.as_ref()
            .map(|url| Remote::new(&RemoteArgs { url: url.clone() }))
            .transpose()
    }
}

pub async fn execute(command: RunsCommand) -> anyhow::Result<Outcome> {
    match command {
        RunsCommand::List {
            project,
            url,
            flow,
            status,
            limit,
            json,
        } => list(&project, &url, flow, status, limit, json).await,
        RunsCommand::Show { id, project, url } => show(&id, &project, &url).await,
        RunsCommand::Replay {
            ids,
            flow,
            status,
            from_start,
            project,
            url,
        } => {
            let selection = match status {
                Some(name) if parse_status(&name)? != RunStatus::Dead => {
                    anyhow::bail!("only dead runs can be replayed (`--status dead`)")
                }
                Some(_) => Replay::AllDead { flow },
                None => Replay::Ids(ids),
            };
            replay(selection, from_start, &project, &url).await
        }
        RunsCommand::Cancel { ids, project, url } => cancel(ids, &project, &url).await,
    }
}

async fn list(
    project: &std::path::Path,
    url: &Option<String>,
    flow: Option<String>,
    status: Option<String>,
    limit: u32,
    json: bool,
) -> anyhow::Result<Outcome> {
    if let Some(remote) = RunsCommand::remote(url)? {
        let path = format!(
            "/api/v1/runs{}",
            query(&[
                ("flow", flow),
                ("status", status),
                ("limit", Some(limit.to_string())),
            ])
        );
        print(&remote.get(&path).await?);
        return Ok(Outcome::Success);
    }
    let status = status.as_deref().map(parse_status).transpose()?;
    let store = open(project).await?;
    let runs = store
        .list_runs(&RunFilter {
            flow,
            status,
            before: None,
            limit,
            ..RunFilter::default()
        })
        .await?;
    if json {
        crate::outln!("{}", serde_json::to_string_pretty(&runs)?);
    } else {
        crate::outln!(
            "{:<36}  {:<20}  {:<9}  {:<8}  {:<7}  {:<23}  ERROR",
            "ID",
            "FLOW",
            "STATUS",
            "ATTEMPTS",
            "RETRIES",
            "CREATED"
        );
        for run in &runs {
            crate::outln!(
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

async fn show(
    id: &str,
    project: &std::path::Path,
    url: &Option<String>,
) -> anyhow::Result<Outcome> {
    if let Some(remote) = RunsCommand::remote(url)? {
        print(&remote.get(&format!("/api/v1/runs/{}", segment(id))).await?);
        return Ok(Outcome::Success);
    }
    let id = parse_id(id)?;
    let store = open(project).await?;
    let Some(run) = store.run(id).await? else {
        eprintln!("no run {id}");
        return Ok(Outcome::Failure);
    };
    let journal = store.journal(id).await?;
    crate::outln!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({ "run": run, "journal": journal }))?
    );
    Ok(Outcome::Success)
}

/// Which runs `runs replay` queues again.
enum Replay {
    /// The runs named (as given on the command line).
    Ids(Vec<String>),
    /// Every dead run (`--status dead`), of one flow or of all.
    AllDead { flow: Option<String> },
}

async fn replay(
    selection: Replay,
    from_start: bool,
    project: &std::path::Path,
    url: &Option<String>,
) -> anyhow::Result<Outcome> {
    if let Some(remote) = RunsCommand::remote(url)? {
        let mut body = serde_json::json!({ "from_start": from_start });
        match selection {
            Replay::AllDead { flow } => {
                if let Some(flow) = flow {
                    body["flow"] = serde_json::json!(flow);
                }
            }
            Replay::Ids(ids) => body["ids"] = serde_json::json!(ids),
        }
        print(&remote.post("/api/v1/dead-letters/replay", &body).await?);
        return Ok(Outcome::Success);
    }
    let store = open(project).await?;
    let (asked, replayed) = match selection {
        Replay::AllDead { flow } => {
            let done =
                patchbay_store::replay_dead(store.as_ref(), flow.as_deref(), from_start).await?;
            (done.found, done.replayed)
        }
        Replay::Ids(ids) => {
            let ids = ids
                .iter()
                .map(|id| parse_id(id))
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
        crate::outln!("{id}");
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

fn parse_id(text: &str) -> anyhow::Result<RunId> {
    RunId::from_str(text).with_context(|| format!("`{text}` is not a run id"))
}

fn parse_status(name: &str) -> anyhow::Result<RunStatus> {
    RunStatus::parse(name).with_context(|| {
        format!("unknown status `{name}` (queued, running, succeeded, dead, skipped, cancelled)")
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
    crate::node::open_store(&project, &ProcessEnv).await
}

async fn cancel(
    ids: Vec<String>,
    project: &std::path::Path,
    url: &Option<String>,
) -> anyhow::Result<Outcome> {
    let mut all_cancelled = true;
    if let Some(remote) = RunsCommand::remote(url)? {
        for id in &ids {
            match remote
                .post(
                    &format!("/api/v1/runs/{}/cancel", segment(id)),
                    &serde_json::json!({}),
                )
                .await
            {
                Ok(_) => crate::outln!("{id}"),
                Err(e) => {
                    eprintln!("{e:#}");
                    all_cancelled = false;
                }
            }
        }
    } else {
        let store = open(project).await?;
        for text in &ids {
            let id = parse_id(text)?;
            match store.cancel(id).await? {
                CancelOutcome::Cancelled(_) => crate::outln!("{id}"),
                CancelOutcome::Finished(status) => {
                    eprintln!("{id}: not cancelled, it already ended ({status})");
                    all_cancelled = false;
                }
                CancelOutcome::NotFound => {
                    eprintln!("{id}: no such run");
                    all_cancelled = false;
                }
            }
        }
    }
    Ok(if all_cancelled {
        Outcome::Success
    } else {
        Outcome::Failure
    })
}
