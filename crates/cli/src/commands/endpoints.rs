//! `patchbay endpoints list|enable`: the webhook endpoints `deliver` steps
//! send to — one line each, with how the last attempt went, since when
//! every attempt has failed, and whether it is disabled — and enabling a
//! disabled one again.
//!
//! By default it works on the project's store file directly; with `--url`
//! it asks a running node's API (`/api/v1/endpoints`, read scope to list,
//! operate to enable; token in `PATCHBAY_TOKEN`).

use crate::Outcome;
use crate::local::{self, Place};
use crate::remote::{Remote, RemoteArgs, print, segment};
use crate::view::{self, Format};

#[derive(Debug, clap::Subcommand)]
pub enum EndpointsCommand {
    /// List the endpoints deliveries were attempted to.
    List {
        #[command(flatten)]
        place: Place,
        #[command(flatten)]
        format: Format,
    },
    /// Enable a disabled endpoint: deliveries to it are attempted again.
    /// Runs that died while it was disabled stay dead; replay them.
    Enable {
        /// The endpoint's name (its connector).
        name: String,
        #[command(flatten)]
        place: Place,
    },
}

pub async fn execute(command: EndpointsCommand) -> anyhow::Result<Outcome> {
    match command {
        EndpointsCommand::List { place, format } => {
            let document = match place.remote()? {
                Some(remote) => remote.get("/api/v1/endpoints").await?,
                None => local::endpoints(&place.project).await?,
            };
            view::emit(&document, format, view::records::endpoints)?;
        }
        EndpointsCommand::Enable { name, place } => {
            if let Some(url) = place.url {
                let path = format!("/api/v1/endpoints/{}/enable", segment(&name));
                print(
                    &Remote::new(&RemoteArgs { url })?
                        .post(&path, &serde_json::json!({}))
                        .await?,
                );
                return Ok(Outcome::Success);
            }
            let at = crate::secrets::store_at(&place.project)?;
            let enabled = if at.may_hold_data() {
                at.open().await?.enable_endpoint(&name).await?
            } else {
                false
            };
            if !enabled {
                anyhow::bail!("no delivery was ever attempted to `{name}`");
            }
            crate::outln!(
                "endpoint `{name}` enabled; replay the runs that died meanwhile to deliver them"
            );
        }
    }
    Ok(Outcome::Success)
}
