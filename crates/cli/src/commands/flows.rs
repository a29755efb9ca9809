//! `patchbay flows list|show --url`: the flows a running node serves.

use crate::Outcome;
use crate::remote::{Remote, RemoteArgs, print, segment};

#[derive(Debug, clap::Subcommand)]
pub enum FlowsCommand {
    /// List the flows of the running configuration.
    List {
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Show one flow with its compiled steps.
    Show {
        name: String,
        #[command(flatten)]
        remote: RemoteArgs,
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
        FlowsCommand::List { remote } => print(&Remote::new(&remote)?.get("/api/v1/flows").await?),
        FlowsCommand::Show { name, remote } => print(
            &Remote::new(&remote)?
                .get(&format!("/api/v1/flows/{}", segment(&name)))
                .await?,
        ),
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
