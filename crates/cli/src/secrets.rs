//! Secrets for a project folder: the master key, `${secret:NAME}` resolution
//! at load, and the [`ProjectSource`] a node reloads from.
//!
//! Loading takes two passes: the store's location comes from the
//! configuration, and the configuration's `${secret:...}` values come from
//! the store. The first pass reads the project leniently (only to find the
//! store), the second loads it for real with the secrets opened.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use patchbay_config::{Diagnostic, ProcessEnv, Project, Report, WithSecrets};
use patchbay_engine::{LoadedProject, ProjectSource};
use patchbay_store::{MASTER_KEY_ENV, MasterKey, Secrets};

use crate::store_at::StoreAt;

/// The master key of the store at `store_path`: from `PATCHBAY_MASTER_KEY`,
/// else from the key file beside the store, created when `create` allows.
pub fn master_key(store_path: &Path, create: bool) -> anyhow::Result<MasterKey> {
    let from_env = std::env::var(MASTER_KEY_ENV).ok();
    let file = MasterKey::default_file(store_path);
    if from_env.is_none() && !create && !file.exists() {
        anyhow::bail!(
            "secrets are stored in {} but there is no master key: set {MASTER_KEY_ENV} or restore {}",
            store_path.display(),
            file.display()
        );
    }
    Ok(MasterKey::load(from_env.as_deref(), &file)?)
}

/// A node's master key, as [`existing_node_key`] found it.
pub struct FoundKey {
    pub key: Option<MasterKey>,
    /// How many sealed entries `--dangerous-new-master-key` deleted; the
    /// caller logs it (the key is looked for before logging starts).
    pub deleted: Option<u64>,
}

impl FoundKey {
    /// Says on standard error what `--dangerous-new-master-key` deleted, if
    /// anything, for a node that stops before logging starts.
    pub fn tell(&self, store: &StoreAt) {
        if let Some(deleted) = self.deleted {
            eprintln!(
                "note: --dangerous-new-master-key: the master key was missing; deleted the \
                 {deleted} secret(s) and credential(s) it sealed in {}",
                store.shown()
            );
        }
    }

    /// Logs what `--dangerous-new-master-key` deleted, if anything.
    pub fn log(&self, store: &StoreAt) {
        if let Some(deleted) = self.deleted {
            tracing::warn!(
                store = %store.shown(),
                deleted,
                "--dangerous-new-master-key: the master key was missing; deleted the secrets and \
                 credentials it sealed"
            );
        }
    }
}

/// The master key of a node serving the store at `store_path`, if it has
/// one: from `PATCHBAY_MASTER_KEY`, else the key file beside the store.
/// Without one, a store holding sealed data (secrets or stored credentials)
/// is refused, since a new key could not open them; with
/// `danger_new_master_key` that data is deleted instead, so that
/// [`node_key`] may create a key. Creates nothing else.
pub async fn existing_node_key(
    store_at: &StoreAt,
    danger_new_master_key: bool,
) -> anyhow::Result<FoundKey> {
    let from_env = std::env::var(MASTER_KEY_ENV).ok();
    let file = MasterKey::default_file(&store_at.path);
    let none = FoundKey {
        key: None,
        deleted: None,
    };
    if from_env.is_some() || file.exists() {
        return Ok(FoundKey {
            key: Some(MasterKey::load(from_env.as_deref(), &file)?),
            deleted: None,
        });
    }
    if !store_at.may_hold_data() {
        return Ok(none);
    }
    let store = store_at.open().await?;
    let secrets = store.secret_names().await?.len();
    let credentials = store.count_credentials().await?;
    if secrets == 0 && credentials == 0 {
        return Ok(none);
    }
    if !danger_new_master_key {
        anyhow::bail!(
            "the store at {} holds {secrets} sealed secret(s) and {credentials} sealed \
             credential(s), but its master key is missing: restore {} or set \
             {MASTER_KEY_ENV}. To start over with a new key, which deletes what the old one \
             sealed, pass --dangerous-new-master-key",
            store_at.shown(),
            file.display()
        );
    }
    let deleted = store.delete_sealed().await?;
    Ok(FoundKey {
        key: None,
        deleted: Some(deleted),
    })
}

/// The master key of a node serving the store at `store_path`, created
/// (mode 0600) when there is none and nothing sealed needs the old one.
pub async fn node_key(store_at: &StoreAt) -> anyhow::Result<MasterKey> {
    if let Some(key) = existing_node_key(store_at, false).await?.key {
        return Ok(key);
    }
    Ok(MasterKey::load(
        None,
        &MasterKey::default_file(&store_at.path),
    )?)
}

/// Where a project keeps its store, read leniently: a project with other
/// problems still names its store.
pub fn store_at(dir: &Path) -> anyhow::Result<StoreAt> {
    let (project, _) = Project::load_partial(dir, &ProcessEnv)
        .map_err(|report| anyhow::anyhow!("cannot load the project:\n{report}"))?;
    StoreAt::of(&project, &ProcessEnv)
}

/// Every secret of the store at `store_path`, opened. An absent store, or
/// one without secrets, needs no master key and gives none.
pub async fn resolve(store_at: &StoreAt) -> anyhow::Result<HashMap<String, String>> {
    if !store_at.may_hold_data() {
        return Ok(HashMap::new());
    }
    let store = store_at.open().await?;
    if store.secret_names().await?.is_empty() {
        return Ok(HashMap::new());
    }
    let secrets = Secrets::new(store, master_key(&store_at.path, false)?);
    Ok(secrets.resolve_all().await?)
}

/// The process environment with the project's secrets in front of it.
pub async fn project_env(dir: &Path) -> anyhow::Result<WithSecrets<ProcessEnv>> {
    let secrets = match store_at(dir) {
        Ok(at) => resolve(&at).await?,
        // The real load reports the problem, with the rest.
        Err(_) => HashMap::new(),
    };
    Ok(WithSecrets::new(secrets, ProcessEnv))
}

/// A fingerprint of secret values, to tell whether a reload must rebuild
/// connectors. In memory only; never shown.
pub fn digest(secrets: &HashMap<String, String>) -> String {
    let mut sorted: Vec<_> = secrets.iter().collect();
    sorted.sort();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    sorted.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// A project folder a node can load again, with its store's secrets.
pub struct FolderSource {
    pub dir: PathBuf,
    pub secrets: Secrets,
}

#[async_trait::async_trait]
impl ProjectSource for FolderSource {
    async fn load(&self) -> Result<LoadedProject, Report> {
        let values = self.secrets.resolve_all().await.map_err(|e| {
            let mut report = Report::default();
            report.push(Diagnostic::new(
                &self.dir,
                0,
                0,
                format!("cannot open the stored secrets: {e}"),
            ));
            report
        })?;
        let secrets_digest = digest(&values);
        let env = WithSecrets::new(values, ProcessEnv);
        let dir = self.dir.clone();
        // Loading reads files, compiles every expression and builds the
        // connectors: off the runtime's worker threads.
        let prepared = tokio::task::spawn_blocking(move || crate::node::Prepared::load(&dir, &env))
            .await
            .map_err(|e| {
                let mut report = Report::default();
                report.push(Diagnostic::new(
                    &self.dir,
                    0,
                    0,
                    format!("reload failed: {e}"),
                ));
                report
            })??;
        Ok(LoadedProject {
            build: prepared.build,
            secrets_digest,
        })
    }
}
