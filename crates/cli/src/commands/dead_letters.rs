//! `patchbay dead-letters list|replay --url`: dead runs on a running node.
//! (`patchbay runs list --status dead` and `runs replay` do the same on the
//! store file directly.)

use serde_json::json;

use crate::Outcome;
use crate::remote::{Remote, RemoteArgs, print, query};

#[derive(Debug, clap::Subcommand)]
pub enum DeadLettersCommand {
    /// List dead runs, newest first.
    List {
        /// Only dead runs of this flow.
        #[arg(long)]
        flow: Option<String>,
        /// At most this many (the API caps it at 500).
        #[arg(long)]
        limit: Option<u32>,
        /// The `next_cursor` of a previous page.
        #[arg(long)]
        cursor: Option<String>,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Queue dead runs again: the given ids, every dead run of `--flow`, or
    /// with `--all` every dead run.
    Replay {
        ids: Vec<String>,
        #[arg(long, conflicts_with = "ids")]
        flow: Option<String>,
        /// Replay every dead run.
        #[arg(long, conflicts_with_all = ["ids", "flow"])]
        all: bool,
        /// Run every step again instead of resuming at the failed one.
        #[arg(long)]
        from_start: bool,
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

pub async fn execute(command: DeadLettersCommand) -> anyhow::Result<Outcome> {
    match command {
        DeadLettersCommand::List {
            flow,
            limit,
            cursor,
            remote,
        } => {
            let path = format!(
                "/api/v1/dead-letters{}",
                query(&[
                    ("flow", flow),
                    ("limit", limit.map(|l| l.to_string())),
                    ("cursor", cursor),
                ])
            );
            print(&Remote::new(&remote)?.get(&path).await?);
        }
        DeadLettersCommand::Replay {
            ids,
            flow,
            all,
            from_start,
            remote,
        } => {
            if ids.is_empty() && flow.is_none() && !all {
                anyhow::bail!("name the runs to replay, or use --flow F or --all");
            }
            let mut body = json!({ "from_start": from_start });
            if !ids.is_empty() {
                body["ids"] = json!(ids);
            }
            if let Some(flow) = flow {
                body["flow"] = json!(flow);
            }
            print(
                &Remote::new(&remote)?
                    .post("/api/v1/dead-letters/replay", &body)
                    .await?,
            );
        }
    }
    Ok(Outcome::Success)
}
