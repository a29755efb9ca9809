//! What the engine's unit tests share: a project of one flow, built as
//! `check` and `run` build it, and an engine running it on a real SQLite
//! file in a temporary folder.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use patchbay_config::{MapEnv, Report, Source};
use patchbay_store::{SqliteOptions, SqliteStore, Store};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

use crate::{Build, Engine, EngineOptions, EngineTasks, Roles, SystemClock};

/// A project whose only flow, `flows/NAME.yaml`, holds `flow`.
pub(crate) fn build(name: &str, flow: &str) -> Result<Build, Report> {
    Build::from_sources(
        Path::new("."),
        Source {
            path: PathBuf::from("patchbay.yaml"),
            text: String::new(),
        },
        vec![Source {
            path: PathBuf::from(format!("flows/{name}.yaml")),
            text: flow.to_string(),
        }],
        &MapEnv::new([]),
    )
}

/// An engine started on a fresh store.
pub(crate) struct Running {
    pub engine: Engine,
    pub store: Arc<dyn Store>,
    tasks: EngineTasks,
    shutdown: CancellationToken,
    _dir: TempDir,
}

impl Running {
    /// Starts `build` with every role, on the wall clock.
    pub async fn start(build: Build) -> Running {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(SqliteOptions::new(dir.path().join("patchbay.db")))
                .await
                .expect("the store opens"),
        );
        let shutdown = CancellationToken::new();
        let options = EngineOptions {
            roles: Roles::default(),
            secrets: None,
            reload: None,
            clock: Arc::new(SystemClock),
        };
        let (engine, tasks) = Engine::start(build, store.clone(), options, shutdown.clone())
            .expect("the engine starts");
        Running {
            engine,
            store,
            tasks,
            shutdown,
            _dir: dir,
        }
    }

    /// Stops the engine and waits for its tasks.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.tasks.stopped().await;
    }
}
