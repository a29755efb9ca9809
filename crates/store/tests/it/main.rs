//! Integration tests of the store, run against SQLite (each test on a real
//! database file in a temporary folder) or, with
//! `PATCHBAY_TEST_STORE=postgres`, against PostgreSQL (each test in a
//! schema of its own, dropped at the end, on the server of
//! `PATCHBAY_TEST_PG_URL`, by default the local `test` database). The same
//! tests hold both stores to the same behaviour; `layout` and `sqlite` test
//! what only the SQLite file has.

mod audit;
mod cancel;
mod clock;
mod cluster;
mod depth;
mod drift;
mod endpoints;
mod journal;
mod layout;
mod query;
mod queue;
mod replay;
mod search;
mod secrets;
mod sqlite;
mod stats;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use patchbay_store::{
    Claim, Clock, JournalEntry, NewRun, PgOptions, PgStore, Run, RunId, RunOutcome, RunStatus,
    SqliteOptions, SqliteStore, StepStatus, Store, SystemClock,
};
use patchbay_testkit::pg::{TestSchema, on_postgres, pg_url};
use serde_json::json;
use tempfile::TempDir;

/// A long lease: never expires during a test.
pub const LONG: Duration = Duration::from_secs(600);

/// What keeps a test's store alive, and where it lives: a SQLite file's
/// folder, or a PostgreSQL schema, dropped with it.
pub enum Keep {
    Folder(TempDir),
    Schema(TestSchema),
}

impl Keep {
    /// Opens the same store again (what a restart would find).
    pub async fn reopen(&self) -> Box<dyn Store> {
        match self {
            Keep::Folder(dir) => Box::new(
                SqliteStore::open(SqliteOptions::new(dir.path().join("patchbay.db")))
                    .await
                    .unwrap(),
            ),
            Keep::Schema(schema) => Box::new(
                PgStore::open(PgOptions {
                    schema: Some(schema.name().to_string()),
                    ..PgOptions::new(schema.url())
                })
                .await
                .unwrap(),
            ),
        }
    }
}

/// A fresh store of the kind under test, on the wall clock.
pub async fn open() -> (Box<dyn Store>, Keep) {
    open_with_clock(Arc::new(SystemClock)).await
}

/// A fresh store of the kind under test, reading time from `clock`.
pub async fn open_with_clock(clock: Arc<dyn Clock>) -> (Box<dyn Store>, Keep) {
    if on_postgres() {
        let schema = TestSchema::new();
        let store = PgStore::open(PgOptions {
            schema: Some(schema.name().to_string()),
            clock,
            ..PgOptions::new(schema.url())
        })
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at {} is needed (PATCHBAY_TEST_STORE=postgres): {e}",
                pg_url()
            )
        });
        return (Box::new(store), Keep::Schema(schema));
    }
    let dir = tempfile::tempdir().unwrap();
    let store =
        SqliteStore::open(SqliteOptions::new(dir.path().join("patchbay.db")).with_clock(clock))
            .await
            .unwrap();
    (Box::new(store), Keep::Folder(dir))
}

/// A SQLite store on a fresh file, for what only SQLite has; keep the
/// folder alive as long as the store.
pub async fn open_sqlite() -> (SqliteStore, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteOptions::new(dir.path().join("patchbay.db")))
        .await
        .unwrap();
    (store, dir)
}

/// A run of `flow` with an optional dedupe key.
pub fn new_run(flow: &str, dedupe_key: Option<&str>) -> NewRun {
    let id = RunId::now_v7();
    NewRun {
        id,
        flow: flow.to_owned(),
        trigger: "webhook".to_owned(),
        input: json!({"order_id": id.to_string(), "total_cents": 1250, "tags": ["a", "b"]}),
        headers: json!({"webhook-id": dedupe_key}),
        config_version: "v1".to_owned(),
        dedupe_key: dedupe_key.map(str::to_owned),
        parent: None,
        lease: None,
    }
}

/// The current time truncated to what the store keeps (milliseconds).
pub fn now_ms() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap()
}

/// A run's first claim (its first attempt), which is what most tests hold.
pub fn first_claim(run: RunId) -> Claim {
    Claim { run, attempt: 1 }
}

/// Claims a run again (the only one due) once the previous claim's short
/// lease has expired; the new claim's lease is as short.
pub async fn reclaim(store: &dyn Store, owner: &str) -> Run {
    poll(Duration::from_secs(5), || async {
        let mut runs = store
            .claim(owner, 1, Duration::from_millis(1))
            .await
            .unwrap();
        runs.pop()
    })
    .await
}

/// A successful plain step entry made under `claim`.
pub fn entry_under(claim: Claim, step_index: u32, item: Option<u32>) -> JournalEntry {
    JournalEntry {
        attempt: claim.attempt,
        ..entry(claim.run, step_index, item)
    }
}

/// A successful plain step entry, made under the run's first claim.
pub fn entry(run: RunId, step_index: u32, item: Option<u32>) -> JournalEntry {
    JournalEntry {
        run_id: run,
        step_index,
        step_id: format!("step-{step_index}"),
        item,
        attempt: 1,
        status: StepStatus::Succeeded,
        started_at: now_ms(),
        duration_ms: 12,
        request: Some(json!({"method": "POST", "url": "http://127.0.0.1:1/x"})),
        output: Some(json!({"step": step_index, "item": item})),
        error: None,
        error_class: None,
        current: true,
    }
}

pub fn succeeded(output: serde_json::Value) -> RunOutcome {
    RunOutcome {
        status: RunStatus::Succeeded,
        output: Some(output),
        error: None,
    }
}

/// Calls `probe` until it yields a value, failing the test after `timeout`.
pub async fn poll<T, F, Fut>(timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
