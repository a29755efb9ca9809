//! `patchbay drift`: how upstream replies differed from their connectors'
//! contracts — one line per kind of difference, with where, what was
//! expected and what came, how often and when.
//!
//! By default it reads the project's store file directly; with `--url` it
//! asks a running node's API (`GET /api/v1/drift`, read scope, token in
//! `PATCHBAY_TOKEN`).

use std::path::{Path, PathBuf};

use patchbay_store::Drift;

use crate::Outcome;
use crate::remote::{Remote, RemoteArgs, print};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The project folder (holding patchbay.yaml).
    #[arg(long, short, default_value = ".")]
    project: PathBuf,
    /// Ask a running node's API instead of opening the store file.
    #[arg(long, conflicts_with = "project")]
    url: Option<String>,
    /// Print JSON instead of a table (always JSON with `--url`).
    #[arg(long)]
    json: bool,
}

pub async fn execute(args: Args) -> anyhow::Result<Outcome> {
    if let Some(url) = args.url {
        print(
            &Remote::new(&RemoteArgs { url })?
                .get("/api/v1/drift")
                .await?,
        );
        return Ok(Outcome::Success);
    }
    let records = read(&args.project).await?;
    if args.json {
        crate::outln!("{}", serde_json::to_string_pretty(&records)?);
    } else {
        crate::out!("{}", table(&records));
    }
    Ok(Outcome::Success)
}

async fn read(dir: &Path) -> anyhow::Result<Vec<Drift>> {
    let at = crate::secrets::store_at(dir)?;
    if !at.may_hold_data() {
        // Nothing was ever recorded; opening would create an empty store.
        return Ok(Vec::new());
    }
    let store = at.open().await?;
    Ok(store.list_drift().await?)
}

/// The records as a table for people.
fn table(records: &[Drift]) -> String {
    if records.is_empty() {
        return "no contract drift recorded\n".to_string();
    }
    let mut out = format!(
        "{:<12}  {:<28}  {:<8}  {:<28}  {:<28}  {:<10}  {:>7}  {:<19}  {:<19}\n",
        "CONNECTOR",
        "OPERATION",
        "RESPONSE",
        "WHERE",
        "EXPECTED",
        "SEEN",
        "COUNT",
        "FIRST SEEN",
        "LAST SEEN"
    );
    for record in records {
        let kind = &record.kind;
        out.push_str(&format!(
            "{:<12}  {:<28}  {:<8}  {:<28}  {:<28}  {:<10}  {:>7}  {:<19}  {:<19}\n",
            kind.connector,
            kind.operation,
            kind.response,
            if kind.pointer.is_empty() {
                "/"
            } else {
                &kind.pointer
            },
            kind.expected,
            record.seen,
            record.count,
            record.first_seen.format("%Y-%m-%d %H:%M:%S"),
            record.last_seen.format("%Y-%m-%d %H:%M:%S"),
        ));
    }
    out
}
