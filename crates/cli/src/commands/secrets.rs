//! `patchbay secrets set|list|delete`: manage the secrets that
//! `${secret:NAME}` resolves to, sealed in the project's store.
//!
//! Values are read from standard input, never from the command line, where
//! they would land in shell history and in every process listing. A running
//! node sees a change after `POST /api/v1/config/reload` (or a restart).

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use patchbay_store::{MAX_SECRET_BYTES, MasterKey, Secrets};
use serde_json::json;

use crate::Outcome;
use crate::remote::{Remote, RemoteArgs, segment};
use crate::view::{self, Format};

fn remote(url: String) -> anyhow::Result<Remote> {
    Remote::new(&RemoteArgs { url })
}

#[derive(Debug, clap::Subcommand)]
pub enum SecretsCommand {
    /// Create or replace a secret; the value is read from standard input
    /// (one trailing newline is dropped).
    Set {
        /// The secret's name, as written in `${secret:NAME}`.
        name: String,
        /// The project folder (holding patchbay.yaml).
        #[arg(long, short, default_value = ".")]
        project: PathBuf,
        /// Act on a running node's API instead of the store file (token in
        /// PATCHBAY_TOKEN, admin scope).
        #[arg(long, conflicts_with = "project")]
        url: Option<String>,
    },
    /// List the secrets' names and when each was set (never their values).
    List {
        /// The project folder (holding patchbay.yaml).
        #[arg(long, short, default_value = ".")]
        project: PathBuf,
        /// Act on a running node's API instead of the store file (token in
        /// PATCHBAY_TOKEN, admin scope).
        #[arg(long, conflicts_with = "project")]
        url: Option<String>,
        #[command(flatten)]
        format: Format,
    },
    /// Delete a secret.
    Delete {
        name: String,
        /// The project folder (holding patchbay.yaml).
        #[arg(long, short, default_value = ".")]
        project: PathBuf,
        /// Act on a running node's API instead of the store file (token in
        /// PATCHBAY_TOKEN, admin scope).
        #[arg(long, conflicts_with = "project")]
        url: Option<String>,
    },
}

pub async fn execute(command: SecretsCommand) -> anyhow::Result<Outcome> {
    match command {
        SecretsCommand::Set { name, project, url } => {
            let value = read_value(std::io::stdin().lock())?;
            match url {
                Some(url) => {
                    remote(url)?
                        .put(
                            &format!("/api/v1/secrets/{}", segment(&name)),
                            &json!({ "value": value }),
                        )
                        .await?;
                }
                None => secrets(&project, true).await?.set(&name, &value).await?,
            }
            eprintln!("secret `{name}` set");
        }
        SecretsCommand::List {
            url: Some(url),
            format,
            ..
        } => {
            let document = remote(url)?.get("/api/v1/secrets?limit=500").await?;
            view::emit(&document, format, view::records::secrets)?;
        }
        SecretsCommand::Delete {
            name,
            url: Some(url),
            ..
        } => {
            remote(url)?
                .delete(&format!("/api/v1/secrets/{}", segment(&name)))
                .await?;
            eprintln!("secret `{name}` deleted");
        }
        SecretsCommand::List {
            project,
            url: None,
            format,
        } => {
            let mut listed = secrets(&project, false).await?.list().await?;
            listed.sort_by(|a, b| a.name.cmp(&b.name));
            // As `GET /api/v1/secrets` answers: names and times, never values.
            let items: Vec<_> = listed
                .into_iter()
                .map(|s| json!({ "name": s.name, "updated_at": s.updated_at }))
                .collect();
            let document = json!({ "items": items, "next_cursor": null });
            view::emit(&document, format, view::records::secrets)?;
        }
        SecretsCommand::Delete {
            name,
            project,
            url: None,
        } => {
            if !secrets(&project, false).await?.delete(&name).await? {
                eprintln!("no secret `{name}`");
                return Ok(Outcome::Failure);
            }
            eprintln!("secret `{name}` deleted");
        }
    }
    Ok(Outcome::Success)
}

/// The secrets of the project in `dir`. A master key is created only by
/// `set` into a store holding no secrets yet: a new key beside secrets
/// sealed with a lost one would only make them unreadable for good.
async fn secrets(dir: &Path, create_key: bool) -> anyhow::Result<Secrets> {
    let at = crate::secrets::store_at(dir)?;
    let store = at.open().await?;
    let empty = store.secret_names().await?.is_empty();
    let key = if empty && !create_key {
        // Nothing stored: any key opens nothing, and none is created.
        MasterKey::from_base64(&MasterKey::generate_base64())?
    } else {
        // Stored credentials are sealed with the key too.
        let nothing_sealed = empty && store.count_credentials().await? == 0;
        crate::secrets::master_key(&at.path, create_key && nothing_sealed)?
    };
    Ok(Secrets::new(store, key))
}

fn read_value(mut input: impl Read) -> anyhow::Result<String> {
    let mut bytes = Vec::new();
    input
        .by_ref()
        .take(MAX_SECRET_BYTES as u64 + 2)
        .read_to_end(&mut bytes)
        .context("cannot read the value from standard input")?;
    let mut value = String::from_utf8(bytes).context("the value is not UTF-8")?;
    if value.ends_with('\n') {
        value.pop();
        if value.ends_with('\r') {
            value.pop();
        }
    }
    if value.is_empty() {
        anyhow::bail!(
            "the value is empty: pipe it on standard input, e.g. `printf %s \"$TOKEN\" | patchbay secrets set NAME`"
        );
    }
    Ok(value)
}
