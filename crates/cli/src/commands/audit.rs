//! `patchbay audit`: the audit log — who changed what through the
//! management API, from where, with what outcome, and which requests were
//! refused for their token.
//!
//! By default it reads the project's store file directly (beside a running
//! node, or after it stopped); with `--url` it asks a running node's API
//! (`GET /api/v1/audit`, admin scope, token in `PATCHBAY_TOKEN`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use patchbay_store::{AuditEntry, AuditFilter, AuditId};

use crate::Outcome;
use crate::remote::{Remote, RemoteArgs, print, query};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The project folder (holding patchbay.yaml).
    #[arg(long, short, default_value = ".")]
    project: PathBuf,
    /// Ask a running node's API instead of opening the store file.
    #[arg(long, conflicts_with = "project")]
    url: Option<String>,
    /// At most this many entries, newest first (the API caps it at 500).
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Continue after this entry: the id of the last one shown (with
    /// `--url`, the `next_cursor` of the previous page).
    #[arg(long)]
    before: Option<String>,
    /// Print JSON instead of a table (always JSON with `--url`).
    #[arg(long)]
    json: bool,
}

pub async fn execute(args: Args) -> anyhow::Result<Outcome> {
    if let Some(url) = args.url {
        let path = format!(
            "/api/v1/audit{}",
            query(&[
                ("limit", Some(args.limit.to_string())),
                ("cursor", args.before),
            ])
        );
        print(&Remote::new(&RemoteArgs { url })?.get(&path).await?);
        return Ok(Outcome::Success);
    }
    let before = args
        .before
        .as_deref()
        .map(|text| {
            AuditId::parse_str(text).with_context(|| format!("`{text}` is not an audit entry id"))
        })
        .transpose()?;
    let entries = read(&args.project, before, args.limit).await?;
    if args.json {
        crate::outln!("{}", serde_json::to_string_pretty(&entries)?);
    } else {
        crate::out!("{}", table(&entries));
    }
    Ok(Outcome::Success)
}

async fn read(dir: &Path, before: Option<AuditId>, limit: u32) -> anyhow::Result<Vec<AuditEntry>> {
    let at = crate::secrets::store_at(dir)?;
    if !at.may_hold_data() {
        // Nothing was ever recorded; opening would create an empty store.
        return Ok(Vec::new());
    }
    let store = at.open().await?;
    Ok(store.list_audit(&AuditFilter { before, limit }).await?)
}

/// The entries as a table for people, newest first.
fn table(entries: &[AuditEntry]) -> String {
    let mut out = format!(
        "{:<36}  {:<23}  {:<16}  {:<6}  {:<32}  {:<36}  {:<6}  PEER\n",
        "ID", "AT", "ACTOR", "METHOD", "ROUTE", "TARGET", "STATUS"
    );
    for entry in entries {
        out.push_str(&format!(
            "{:<36}  {:<23}  {:<16}  {:<6}  {:<32}  {:<36}  {:<6}  {}\n",
            entry.id,
            entry.at.format("%Y-%m-%d %H:%M:%S%.3f"),
            entry.actor,
            entry.method,
            entry.route,
            entry.target.as_deref().unwrap_or("-"),
            // No status: the node stopped before it answered.
            entry
                .status
                .map_or_else(|| "?".to_string(), |s| s.to_string()),
            entry.peer.as_deref().unwrap_or("-"),
        ));
    }
    out
}
