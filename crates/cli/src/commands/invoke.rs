//! `patchbay invoke FLOW --input FILE`: one run, executed here, to its end.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use patchbay_engine::{Build, Engine, EngineOptions, Event, Roles, SystemClock};
use patchbay_store::RunStatus;
use tokio_util::sync::CancellationToken;

use crate::Outcome;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The flow to run.
    pub flow: String,
    /// JSON file with the event (`-` for standard input); `{}` when omitted.
    #[arg(long, short)]
    pub input: Option<PathBuf>,
    /// The project folder (holding patchbay.yaml).
    #[arg(long, short, default_value = ".")]
    pub project: PathBuf,
    /// How long to wait for the run to finish.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

pub async fn execute(args: Args) -> anyhow::Result<Outcome> {
    let input = read_input(args.input.as_deref())?;
    let env = crate::secrets::project_env(&args.project).await?;
    let build = match Build::load(&args.project, &env) {
        Ok(build) => build,
        Err(report) => {
            eprintln!("{report}");
            return Ok(Outcome::Failure);
        }
    };
    let store = crate::node::open_store(&build.project, &env).await?;
    // Rotated refresh tokens are sealed with the store's key; `invoke`
    // creates none (that is `run`'s job), so without one they stay in memory.
    let secrets = crate::secrets::master_key(&build.project.store_path(), false)
        .ok()
        .map(|key| patchbay_store::Secrets::new(Arc::clone(&store), key));
    let shutdown = CancellationToken::new();
    let options = EngineOptions {
        roles: Roles {
            workers: true,
            scheduler: false,
            alerts: false,
        },
        secrets,
        reload: None,
        clock: Arc::new(SystemClock),
    };
    let (engine, tasks) = Engine::start(build, Arc::clone(&store), options, shutdown.clone())?;
    let outcome = engine
        .trigger(Event {
            flow: args.flow.clone(),
            trigger: "manual",
            input,
            headers: serde_json::json!({}),
            dedupe_key: None,
        })
        .await?;
    let run_id = outcome.run_id();
    let run = engine.wait_for(run_id, args.timeout).await?;
    shutdown.cancel();
    tasks.stopped().await;
    let Some(run) = run else {
        anyhow::bail!("run {run_id} disappeared from the store");
    };
    let journal = store.journal(run_id).await?;
    crate::outln!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({ "run": run, "journal": journal }))?
    );
    Ok(match run.status {
        RunStatus::Succeeded | RunStatus::Skipped => Outcome::Success,
        RunStatus::Dead | RunStatus::Cancelled => Outcome::Failure,
        RunStatus::Queued | RunStatus::Running => {
            eprintln!(
                "run {run_id} is still {} after {:?}; it will resume on the next `patchbay run`",
                run.status, args.timeout
            );
            Outcome::Failure
        }
    })
}

pub(crate) fn read_input(path: Option<&std::path::Path>) -> anyhow::Result<serde_json::Value> {
    let text = match path {
        None => return Ok(serde_json::json!({})),
        Some(p) if p.as_os_str() == "-" => {
            std::io::read_to_string(std::io::stdin()).context("reading standard input")?
        }
        Some(p) => {
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?
        }
    };
    serde_json::from_str(&text).context("the input is not valid JSON")
}
