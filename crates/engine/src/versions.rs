//! Runs keep their configuration version.
//!
//! A run is created on the version in force and executes to its end on that
//! version's flows, also after a reload or a restart with a changed project:
//! a resumed run must not find a renamed or reordered step where its journal
//! says another one was. Each node saves the source files of the version it
//! loads in the store ([`Store::save_config_version`]); a run of another
//! version compiles that version's flows again, once, and keeps the plan in
//! a cache. Connectors, caps and budgets are those of the running
//! configuration: a version only pins what a run does, step by step.
//!
//! A version the store no longer has, or that no longer compiles (a flow of
//! it names a connector since removed), fails the run with a message naming
//! the version.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use patchbay_config::{MapEnv, Project, Source};
use patchbay_store::{Store, StoreError};
use serde_json::{Value, json};

use crate::plan::Plan;

/// Why a run's version cannot be executed.
#[derive(Debug, thiserror::Error)]
pub enum VersionError {
    #[error(
        "configuration version {0} is no longer kept by the store; the run cannot finish on the steps it started with"
    )]
    Gone(String),
    #[error("configuration version {version} no longer compiles: {report}")]
    Unloadable { version: String, report: String },
    #[error("configuration version {version}: {source}")]
    Store {
        version: String,
        #[source]
        source: StoreError,
    },
}

/// Plans of the versions runs were created on.
pub(crate) struct Versions {
    dir: PathBuf,
    /// A std mutex: held only to look up or insert, never across an `.await`.
    plans: Mutex<HashMap<String, Arc<Plan>>>,
}

impl Versions {
    pub fn new(dir: &Path, current: Arc<Plan>) -> Versions {
        let mut plans = HashMap::new();
        plans.insert(current.version.clone(), current);
        Versions {
            dir: dir.to_path_buf(),
            plans: Mutex::new(plans),
        }
    }

    /// What the store keeps of a project's version.
    pub fn sources(project: &Project) -> Value {
        Value::Array(
            project
                .sources
                .iter()
                .map(|s| json!({ "path": s.path.to_string_lossy(), "text": s.text }))
                .collect(),
        )
    }

    /// Makes `plan` known without a store read (the version just loaded).
    pub fn insert(&self, plan: Arc<Plan>) {
        self.lock().insert(plan.version.clone(), plan);
    }

    /// The plan of `version`, compiled from its saved sources on first use.
    pub async fn plan(&self, store: &dyn Store, version: &str) -> Result<Arc<Plan>, VersionError> {
        if let Some(plan) = self.lock().get(version) {
            return Ok(plan.clone());
        }
        let sources = store
            .config_version(version)
            .await
            .map_err(|source| VersionError::Store {
                version: version.to_string(),
                source,
            })?
            .ok_or_else(|| VersionError::Gone(version.to_string()))?;
        let plan = Arc::new(self.compile(version, &sources)?);
        self.lock().insert(version.to_string(), plan.clone());
        Ok(plan)
    }

    fn compile(&self, version: &str, sources: &Value) -> Result<Plan, VersionError> {
        let unloadable = |report: String| VersionError::Unloadable {
            version: version.to_string(),
            report,
        };
        let mut files = sources
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|source| {
                Some(Source {
                    path: PathBuf::from(source.get("path")?.as_str()?),
                    text: source.get("text")?.as_str()?.to_string(),
                })
            });
        let root = files
            .next()
            .ok_or_else(|| unloadable("its sources are empty".into()))?;
        // Interpolation is not needed to compile flows: connectors are the
        // running configuration's, and a version's webhooks are never served
        // (their secrets stay unresolved), so unset variables are no concern
        // here.
        let (project, _) =
            Project::from_sources_partial(&self.dir, root, files.collect(), &MapEnv::new([]));
        let mut plan = Plan::compile_for_stored_runs(&project)
            .map_err(|report| unloadable(report.to_string()))?;
        plan.version = version.to_string();
        Ok(plan)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Plan>>> {
        self.plans.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
