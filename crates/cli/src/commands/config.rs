//! `patchbay config show|reload --url`: the configuration a running node
//! serves, and loading it again from disk without a restart.

use serde_json::json;

use crate::Outcome;
use crate::remote::{Remote, RemoteArgs, print};

#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// The running configuration's version and contents.
    Show {
        #[command(flatten)]
        remote: RemoteArgs,
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
        ConfigCommand::Show { remote } => {
            print(&Remote::new(&remote)?.get("/api/v1/config").await?)
        }
        ConfigCommand::Reload { remote } => print(
            &Remote::new(&remote)?
                .post("/api/v1/config/reload", &json!({}))
                .await?,
        ),
    }
    Ok(Outcome::Success)
}
