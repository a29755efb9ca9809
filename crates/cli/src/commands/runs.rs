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
use patchbay_store::{CancelOutcome, RunFilter, RunId, RunStatus};

use crate::Outcome;
use crate::local::{self, Place};
use crate::remote::{print, query, segment};
use crate::view::{self, Format};

#[derive(Debug, clap::Subcommand)]
pub enum RunsCommand {
    /// List runs, newest first.
    List {
        #[command(flatten)]
        place: Place,
        /// Only runs of this flow.
        #[arg(long)]
        flow: Option<String>,
        /// Only runs in this status: queued, running, succeeded, dead, skipped, cancelled.
        #[arg(long)]
        status: Option<String>,
        /// At most this many (1 to 500).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=500))]
        limit: u32,
        /// Continue after the previous page: its `next_cursor`.
        #[arg(long)]
        cursor: Option<String>,
        #[command(flatten)]
        format: Format,
    },
    /// Show one run step by step: each attempt of each step with its
    /// duration, request and error.
    Show {
        /// The run id.
        id: String,
        #[command(flatten)]
        place: Place,
        #[command(flatten)]
        format: Format,
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
        /// Replay the one run named with this corrected input (a JSON file,
        /// or `-` for standard input) instead of its own; it starts over,
        /// and the input it had stays on record (`runs show`).
        #[arg(long, conflicts_with_all = ["status", "from_start"])]
        input: Option<PathBuf>,
        #[command(flatten)]
        place: Place,
    },
    /// Cancel queued or running runs. A running run stops at its next step
    /// boundary; a run that already ended is left as it is.
    Cancel {
        #[arg(required = true)]
        ids: Vec<String>,
        #[command(flatten)]
        place: Place,
    },
}

pub async fn execute(command: RunsCommand) -> anyhow::Result<Outcome> {
    match command {
        RunsCommand::List {
            place,
            flow,
            status,
            limit,
            cursor,
            format,
        } => {
            let document = list(&place, flow, status, limit, cursor).await?;
            view::emit(&document, format, view::runs::list)?;
            view::more(&document, "--cursor");
            Ok(Outcome::Success)
        }
        RunsCommand::Show { id, place, format } => match show(&id, &place).await? {
            Some(document) => {
                view::emit(&document, format, view::runs::detail)?;
                Ok(Outcome::Success)
            }
            None => {
                eprintln!("no run {id}");
                Ok(Outcome::Failure)
            }
        },
        RunsCommand::Replay {
            ids,
            flow,
            status,
            from_start,
            input,
            place,
        } => {
            if let Some(input) = input {
                let [id] = ids.as_slice() else {
                    anyhow::bail!("`--input` replays one run: name exactly one run id");
                };
                let input = super::invoke::read_input(Some(&input))?;
                return replay_with_input(id, &input, &place).await;
            }
            let selection = match status {
                Some(name) if parse_status(&name)? != RunStatus::Dead => {
                    anyhow::bail!("only dead runs can be replayed (`--status dead`)")
                }
                Some(_) => Replay::AllDead { flow },
                None => Replay::Ids(ids),
            };
            replay(selection, from_start, &place).await
        }
        RunsCommand::Cancel { ids, place } => cancel(ids, &place).await,
    }
}

async fn list(
    place: &Place,
    flow: Option<String>,
    status: Option<String>,
    limit: u32,
    cursor: Option<String>,
) -> anyhow::Result<serde_json::Value> {
    if let Some(remote) = place.remote()? {
        let path = format!(
            "/api/v1/runs{}",
            query(&[
                ("flow", flow),
                ("status", status),
                ("limit", Some(limit.to_string())),
                ("cursor", cursor),
            ])
        );
        return remote.get(&path).await;
    }
    let filter = RunFilter {
        flow,
        status: status.as_deref().map(parse_status).transpose()?,
        before: local::cursor(cursor.as_deref())?,
        limit,
        ..RunFilter::default()
    };
    local::runs(&place.project, filter).await
}

/// The run's document, `None` when there is no such run.
async fn show(id: &str, place: &Place) -> anyhow::Result<Option<serde_json::Value>> {
    if let Some(remote) = place.remote()? {
        return remote
            .get(&format!("/api/v1/runs/{}", segment(id)))
            .await
            .map(Some);
    }
    local::run(&place.project, parse_id(id)?).await
}

/// Which runs `runs replay` queues again.
enum Replay {
    /// The runs named (as given on the command line).
    Ids(Vec<String>),
    /// Every dead run (`--status dead`), of one flow or of all.
    AllDead { flow: Option<String> },
}

async fn replay(selection: Replay, from_start: bool, place: &Place) -> anyhow::Result<Outcome> {
    if let Some(remote) = place.remote()? {
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
    let store = open(&place.project).await?;
    let (asked, replayed) = match selection {
        Replay::AllDead { flow } => {
            let dead: u64 = store
                .count_runs()
                .await?
                .iter()
                .filter(|c| c.status == RunStatus::Dead)
                .filter(|c| flow.as_ref().is_none_or(|f| *f == c.flow))
                .map(|c| c.count)
                .sum();
            let progress = crate::progress::bar(dead, "replaying dead runs");
            let done = patchbay_store::replay_dead_with(
                store.as_ref(),
                flow.as_deref(),
                None,
                from_start,
                &mut |n| progress.inc(n as u64),
            )
            .await;
            progress.finish_and_clear();
            let done = done?;
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

async fn replay_with_input(
    id: &str,
    input: &serde_json::Value,
    place: &Place,
) -> anyhow::Result<Outcome> {
    if let Some(remote) = place.remote()? {
        remote
            .post(
                &format!("/api/v1/runs/{}/replay", segment(id)),
                &serde_json::json!({ "input": input }),
            )
            .await?;
    } else {
        let run = parse_id(id)?;
        let store = open(&place.project).await?;
        if !store.replay_with_input(run, input).await? {
            match store.run(run).await? {
                Some(found) => anyhow::bail!("{run}: not replayed, it is {}", found.status),
                None => anyhow::bail!("{run}: no such run"),
            }
        }
    }
    crate::outln!("{id}");
    eprintln!(
        "replayed 1 run from the start with the new input (the old one is kept, see `runs show`); \
         a running node picks it up at once, otherwise the next `patchbay run` does"
    );
    Ok(Outcome::Success)
}

fn parse_id(text: &str) -> anyhow::Result<RunId> {
    RunId::from_str(text).with_context(|| format!("`{text}` is not a run id"))
}

fn parse_status(name: &str) -> anyhow::Result<RunStatus> {
    RunStatus::parse(name).with_context(|| {
        format!("unknown status `{name}` (queued, running, succeeded, dead, skipped, cancelled)")
    })
}

async fn open(dir: &std::path::Path) -> anyhow::Result<std::sync::Arc<dyn patchbay_store::Store>> {
    local::open_for_writing(dir).await
}

async fn cancel(ids: Vec<String>, place: &Place) -> anyhow::Result<Outcome> {
    let mut all_cancelled = true;
    if let Some(remote) = place.remote()? {
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
        let store = open(&place.project).await?;
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
