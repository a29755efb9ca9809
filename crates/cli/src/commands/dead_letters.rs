//! `patchbay dead-letters list|replay`: dead runs, from the project's store
//! file or a running node (`--url`). Replaying needs a node (`runs replay`
//! does it on the store file).

use serde_json::json;

use patchbay_store::{RunFilter, RunStatus};

use crate::Outcome;
use crate::local::{self, Place};
use crate::remote::{Remote, RemoteArgs, print, query};
use crate::view::{self, Format};

#[derive(Debug, clap::Subcommand)]
pub enum DeadLettersCommand {
    /// List dead runs, newest first.
    List {
        /// Only dead runs of this flow.
        #[arg(long)]
        flow: Option<String>,
        /// At most this many (1 to 500).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=500))]
        limit: u32,
        /// Continue after the previous page: its `next_cursor`.
        #[arg(long)]
        cursor: Option<String>,
        #[command(flatten)]
        place: Place,
        #[command(flatten)]
        format: Format,
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
            place,
            format,
        } => {
            let document = match place.remote()? {
                Some(remote) => {
                    let path = format!(
                        "/api/v1/dead-letters{}",
                        query(&[
                            ("flow", flow),
                            ("limit", Some(limit.to_string())),
                            ("cursor", cursor),
                        ])
                    );
                    remote.get(&path).await?
                }
                None => {
                    let filter = RunFilter {
                        flow,
                        status: Some(RunStatus::Dead),
                        before: local::cursor(cursor.as_deref())?,
                        limit,
                        ..RunFilter::default()
                    };
                    local::runs(&place.project, filter).await?
                }
            };
            view::emit(&document, format, view::runs::list)?;
            view::more(&document, "--cursor");
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
