//! `patchbay flows list|show|trigger`: the flows of a project (as `check`
//! compiles them) or of a running node (`--url`), and starting a run on a
//! node.

use patchbay_server::documents;

use crate::Outcome;
use crate::local::{self, Place};
use crate::remote::{Remote, RemoteArgs, print, segment};
use crate::view::{self, Format};

#[derive(Debug, clap::Subcommand)]
pub enum FlowsCommand {
    /// List the flows: trigger and steps of each.
    List {
        #[command(flatten)]
        place: Place,
        #[command(flatten)]
        format: Format,
    },
    /// Show one flow as a tree: its trigger, then its steps in order with
    /// their fan-outs, fallbacks, branches and sub-flows.
    Show {
        name: String,
        #[command(flatten)]
        place: Place,
        #[command(flatten)]
        format: Format,
    },
    /// Start a run of a flow on the node with a JSON input (a file, or `-`
    /// for standard input; `{}` when omitted). Prints the run id at once;
    /// `patchbay runs show ID --url ...` follows it.
    Trigger {
        name: String,
        /// The input document.
        #[arg(long)]
        input: Option<std::path::PathBuf>,
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

pub async fn execute(command: FlowsCommand) -> anyhow::Result<Outcome> {
    match command {
        FlowsCommand::List { place, format } => {
            let document = match place.remote()? {
                // Every flow in one page, as the local list has them.
                Some(remote) => remote.get("/api/v1/flows?limit=500").await?,
                None => documents::flows(&local::prepared(&place.project).await?.build.plan),
            };
            view::emit(&document, format, view::flows::list)?;
        }
        FlowsCommand::Show {
            name,
            place,
            format,
        } => {
            let document = match place.remote()? {
                Some(remote) => {
                    remote
                        .get(&format!("/api/v1/flows/{}", segment(&name)))
                        .await?
                }
                None => {
                    let prepared = local::prepared(&place.project).await?;
                    let plan = &prepared.build.plan;
                    documents::flow(plan, &name).ok_or_else(|| {
                        anyhow::anyhow!(patchbay_engine::EngineError::unknown_flow(&name, plan))
                    })?
                }
            };
            view::emit(&document, format, view::flows::tree)?;
        }
        FlowsCommand::Trigger {
            name,
            input,
            remote,
        } => {
            let input = super::invoke::read_input(input.as_deref())?;
            print(
                &Remote::new(&remote)?
                    .post(&format!("/api/v1/flows/{}/runs", segment(&name)), &input)
                    .await?,
            )
        }
    }
    Ok(Outcome::Success)
}
