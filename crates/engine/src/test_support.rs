//! What the engine's unit tests share: a project of one flow, built as
//! `check` and `run` build it, and an engine running it on a real store: a
//! SQLite file in a temporary folder or, with
//! `PATCHBAY_TEST_STORE=postgres`, a schema of its own in the test
//! PostgreSQL database.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use patchbay_config::{MapEnv, Report, Source};
use patchbay_store::{PgOptions, PgStore, SqliteOptions, SqliteStore, Store};
use patchbay_testkit::pg::{TestSchema, on_postgres, pg_url};
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

/// What `check` reports of flow `name` (empty when it builds).
pub(crate) fn problems(name: &str, flow: &str) -> String {
    match build(name, flow) {
        Ok(_) => String::new(),
        Err(report) => report.to_string(),
    }
}

/// What `check` reports of a flow `orders` whose trigger is `kind` with
/// `settings` (YAML lines indented by four spaces) and one `transform`.
pub(crate) fn trigger_problems(kind: &str, settings: &str) -> String {
    problems(
        "orders",
        &format!("trigger:\n  {kind}:\n{settings}steps:\n  - transform: .\n"),
    )
}

/// A fresh, empty store of the kind under test, and what keeps it (its
/// folder or its schema) until the value is dropped.
pub(crate) struct TestStore {
    pub store: Arc<dyn Store>,
    _folder: Option<TempDir>,
    _schema: Option<TestSchema>,
}

impl TestStore {
    pub async fn open() -> TestStore {
        if on_postgres() {
            let schema = TestSchema::new();
            let store = PgStore::open(PgOptions {
                schema: Some(schema.name().to_string()),
                max_connections: 4,
                ..PgOptions::new(schema.url())
            })
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {} is needed: {e}", pg_url()));
            return TestStore {
                store: Arc::new(store),
                _folder: None,
                _schema: Some(schema),
            };
        }
        let dir = tempfile::tempdir().expect("a temporary folder");
        let store = SqliteStore::open(SqliteOptions::new(dir.path().join("patchbay.db")))
            .await
            .expect("the store opens");
        TestStore {
            store: Arc::new(store),
            _folder: Some(dir),
            _schema: None,
        }
    }
}

/// An engine started on a fresh store.
pub(crate) struct Running {
    pub engine: Engine,
    pub store: Arc<dyn Store>,
    tasks: EngineTasks,
    shutdown: CancellationToken,
    _kept: TestStore,
}

impl Running {
    /// Starts `build` with every role, on the wall clock.
    pub async fn start(build: Build) -> Running {
        let kept = TestStore::open().await;
        let store = Arc::clone(&kept.store);
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
            _kept: kept,
        }
    }

    /// Stops the engine and waits for its tasks.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.tasks.stopped().await;
    }
}
