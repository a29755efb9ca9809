//! Integration tests of the SQLite store, each on a real database file in a
//! temporary folder.

mod audit;
mod cancel;
mod clock;
mod depth;
mod drift;
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
use std::time::Duration;

use chrono::{DateTime, Utc};
use patchbay_store::{
    JournalEntry, NewRun, RunId, RunOutcome, RunStatus, SqliteOptions, SqliteStore, StepStatus,
};
use serde_json::json;
use tempfile::TempDir;

/// A long lease: never expires during a test.
pub const LONG: Duration = Duration::from_secs(600);

/// A store on a fresh file; keep the folder alive as long as the store.
pub async fn open() -> (SqliteStore, TempDir) {
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

/// A successful plain step entry.
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
