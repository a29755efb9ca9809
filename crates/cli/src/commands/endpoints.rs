//! `patchbay endpoints list|enable`: the webhook endpoints `deliver` steps
//! send to — one line each, with how the last attempt went, since when
//! every attempt has failed, and whether it is disabled — and enabling a
//! disabled one again.
//!
//! By default it works on the project's store file directly; with `--url`
//! it asks a running node's API (`/api/v1/endpoints`, read scope to list,
//! operate to enable; token in `PATCHBAY_TOKEN`).

use std::path::{Path, PathBuf};

use patchbay_store::Endpoint;

use crate::Outcome;
use crate::remote::{Remote, RemoteArgs, print, segment};

#[derive(Debug, clap::Subcommand)]
pub enum EndpointsCommand {
    /// List the endpoints deliveries were attempted to.
    List {
        #[command(flatten)]
        place: Place,
        /// Print JSON instead of a table (always JSON with `--url`).
        #[arg(long)]
        json: bool,
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

/// Where the records are: the project's store file, or a running node.
#[derive(Debug, clap::Args)]
pub struct Place {
    /// The project folder (holding patchbay.yaml).
    #[arg(long, short, default_value = ".")]
    project: PathBuf,
    /// Ask a running node's API instead of opening the store file.
    #[arg(long, conflicts_with = "project")]
    url: Option<String>,
}

pub async fn execute(command: EndpointsCommand) -> anyhow::Result<Outcome> {
    match command {
        EndpointsCommand::List { place, json } => {
            if let Some(url) = place.url {
                print(
                    &Remote::new(&RemoteArgs { url })?
                        .get("/api/v1/endpoints")
                        .await?,
                );
                return Ok(Outcome::Success);
            }
            let records = read(&place.project).await?;
            if json {
                crate::outln!("{}", serde_json::to_string_pretty(&records)?);
            } else {
                crate::out!("{}", table(&records));
            }
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

async fn read(dir: &Path) -> anyhow::Result<Vec<Endpoint>> {
    let at = crate::secrets::store_at(dir)?;
    if !at.may_hold_data() {
        // Nothing was ever recorded; opening would create an empty store.
        return Ok(Vec::new());
    }
    let store = at.open().await?;
    Ok(store.endpoints().await?)
}

const TIME: &str = "%Y-%m-%d %H:%M:%S";

/// The records as a table for people.
fn table(records: &[Endpoint]) -> String {
    if records.is_empty() {
        return "no delivery attempted yet\n".to_string();
    }
    let mut out = format!(
        "{:<20}  {:<9}  {:>9}  {:>6}  {:<19}  {:<6}  {:<19}  {}\n",
        "ENDPOINT",
        "STATE",
        "DELIVERED",
        "FAILED",
        "LAST ATTEMPT",
        "STATUS",
        "FAILING SINCE",
        "LAST ERROR"
    );
    for record in records {
        let state = match (&record.disabled_at, &record.failing_since) {
            (Some(_), _) => "disabled",
            (None, Some(_)) => "failing",
            (None, None) => "ok",
        };
        out.push_str(&format!(
            "{:<20}  {:<9}  {:>9}  {:>6}  {:<19}  {:<6}  {:<19}  {}\n",
            record.name,
            state,
            record.delivered,
            record.failed,
            record.last_attempt_at.format(TIME),
            record
                .last_status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
            record
                .failing_since
                .map(|t| t.format(TIME).to_string())
                .unwrap_or_else(|| "-".into()),
            record.last_error.as_deref().unwrap_or("-"),
        ));
    }
    out
}
