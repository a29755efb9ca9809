//! The management API's documents, made from a project's files and store
//! instead of asked of a node: what `runs list`, `flows show`, `audit` and
//! the other list and show commands print without `--url`. Built with the
//! server's own builders ([`patchbay_server::documents`]) or shaped as its
//! pages (`{items, next_cursor}`), so the two ways give the same document.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use patchbay_config::ProcessEnv;
use patchbay_server::documents;
use patchbay_store::{AuditFilter, RunFilter, RunId, Store};
use serde_json::{Value, json};

use crate::node::Prepared;

/// Where a list or show command reads: the project (its files and store
/// file), or a running node.
#[derive(Clone, Debug, clap::Args)]
pub struct Place {
    /// The project folder (holding patchbay.yaml).
    #[arg(long, short, default_value = ".")]
    pub project: PathBuf,
    /// Ask a running node's API instead, e.g. http://127.0.0.1:8080 (token
    /// in PATCHBAY_TOKEN).
    #[arg(long, conflicts_with = "project")]
    pub url: Option<String>,
}

impl Place {
    /// The node to ask, when `--url` was given.
    pub fn remote(&self) -> anyhow::Result<Option<crate::remote::Remote>> {
        self.url
            .as_ref()
            .map(|url| crate::remote::Remote::new(&crate::remote::RemoteArgs { url: url.clone() }))
            .transpose()
    }
}

/// The project's store, for reading; `None` when nothing was ever stored
/// (opening would create an empty store).
pub async fn store(dir: &Path) -> anyhow::Result<Option<Arc<dyn Store>>> {
    let at = crate::secrets::store_at(dir)?;
    if !at.may_hold_data() {
        return Ok(None);
    }
    Ok(Some(at.open().await?))
}

/// The run id a `--cursor` continues after.
pub fn cursor(text: Option<&str>) -> anyhow::Result<Option<RunId>> {
    text.filter(|t| !t.is_empty())
        .map(|text| {
            documents::after_run_cursor(text).with_context(|| {
                format!("`{text}` is not a cursor: pass the `next_cursor` of the previous page")
            })
        })
        .transpose()
}

/// A page of runs, newest first, as `GET /api/v1/runs` answers.
pub async fn runs(dir: &Path, mut filter: RunFilter) -> anyhow::Result<Value> {
    let Some(store) = store(dir).await? else {
        return Ok(json!({ "items": [], "next_cursor": null }));
    };
    let limit = filter.limit as usize;
    // One more than asked tells whether another page follows.
    filter.limit += 1;
    let mut runs = store.list_runs(&filter).await?;
    let more = runs.len() > limit;
    runs.truncate(limit);
    let next = runs
        .last()
        .filter(|_| more)
        .map(|run| documents::run_cursor(run.id));
    let runs: Vec<_> = runs.into_iter().map(documents::shown_run).collect();
    Ok(json!({ "items": runs, "next_cursor": next }))
}

/// A run and its journal, as `GET /api/v1/runs/{id}` answers; `None` when
/// there is no such run.
pub async fn run(dir: &Path, id: RunId) -> anyhow::Result<Option<Value>> {
    let Some(store) = store(dir).await? else {
        return Ok(None);
    };
    let Some(run) = store.run(id).await? else {
        return Ok(None);
    };
    let journal = store.journal(id).await?;
    let input_edits = store.input_edits(id).await?;
    Ok(Some(json!({
        "run": documents::shown_run(run),
        "journal": journal,
        "input_edits": input_edits,
    })))
}

/// A page of the audit log, newest first, as `GET /api/v1/audit` answers.
pub async fn audit(dir: &Path, before: Option<RunId>, limit: u32) -> anyhow::Result<Value> {
    let Some(store) = store(dir).await? else {
        return Ok(json!({ "items": [], "next_cursor": null }));
    };
    let mut entries = store
        .list_audit(&AuditFilter {
            before,
            limit: limit + 1,
        })
        .await?;
    let more = entries.len() > limit as usize;
    entries.truncate(limit as usize);
    let next = entries
        .last()
        .filter(|_| more)
        .map(|entry| documents::run_cursor(entry.id));
    Ok(json!({ "items": entries, "next_cursor": next }))
}

/// Every kind of contract drift, as `GET /api/v1/drift` answers.
pub async fn drift(dir: &Path) -> anyhow::Result<Value> {
    let items = match store(dir).await? {
        Some(store) => store.list_drift().await?,
        None => Vec::new(),
    };
    Ok(json!({ "items": items }))
}

/// Every webhook endpoint, as `GET /api/v1/endpoints` answers.
pub async fn endpoints(dir: &Path) -> anyhow::Result<Value> {
    let items = match store(dir).await? {
        Some(store) => store.endpoints().await?,
        None => Vec::new(),
    };
    Ok(json!({ "items": items }))
}

/// The project loaded and compiled as `check` and `run` do.
pub async fn prepared(dir: &Path) -> anyhow::Result<Prepared> {
    let env = crate::secrets::project_env(dir).await?;
    Prepared::load(dir, &env)
        .map_err(|report| anyhow::anyhow!("cannot load the project:\n{report}"))
}

/// The configuration as `GET /api/v1/config` shows it, loaded now.
pub async fn config(dir: &Path) -> anyhow::Result<Value> {
    let prepared = prepared(dir).await?;
    let build = &prepared.build;
    // By name, as the node lists them (the map is sorted).
    let connectors: Vec<String> = build.project.config.connectors.keys().cloned().collect();
    Ok(documents::config(
        &build.plan,
        chrono::Utc::now(),
        connectors,
    ))
}

/// The project's store, opened (and created when new) for the commands
/// that change runs. Only its location is read from the project, so a
/// project whose secrets are not in this shell's environment can still be
/// operated.
pub async fn open_for_writing(dir: &Path) -> anyhow::Result<Arc<dyn Store>> {
    let project = match patchbay_config::Project::load_partial(dir, &ProcessEnv) {
        Ok((project, _)) => project,
        Err(report) => anyhow::bail!("cannot load the project:\n{report}"),
    };
    crate::node::open_store(&project, &ProcessEnv).await
}
