//! `patchbay config show|reload`: the configuration (of the project as
//! `check` loads it, or the one a running node serves with `--url`), and
//! loading a node's again from disk without a restart.

use serde_json::json;

use crate::Outcome;
use crate::local::{self, Place};
use crate::remote::{Remote, RemoteArgs, print};
use crate::view::{self, Format};

#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// The configuration's version, flows and connectors.
    Show {
        #[command(flatten)]
        place: Place,
        #[command(flatten)]
        format: Format,
    },
    /// Load the project again (files and secrets). Runs in progress finish
    /// on the configuration they started with; an invalid configuration is
    /// refused with its problems and the running one stays.
    Reload {
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

pub async fn execute(command: ConfigCommand) -> anyhow::Result<Outcome> {
    match command {
        ConfigCommand::Show { place, format } => {
            let document = match place.remote()? {
                Some(remote) => remote.get("/api/v1/config").await?,
                None => local::config(&place.project).await?,
            };
            view::emit(&document, format, view::records::config)?;
        }
        ConfigCommand::Reload { remote } => print(
            &Remote::new(&remote)?
                .post("/api/v1/config/reload", &json!({}))
                .await?,
        ),
    }
    Ok(Outcome::Success)
}
