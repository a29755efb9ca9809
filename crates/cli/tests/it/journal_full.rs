//! A run whose journal has no room left ends dead with an error that says
//! so, instead of being resumed to fail the same way again and again.

use std::time::Duration;

use patchbay_store::RunStatus;
use serde_json::json;
use sqlx::Connection;

use crate::support::{TestProject, env, eventually, manual_event, store_file};

const FLOW: &str = "\
trigger: { manual: {} }
steps:
  - wait: 1s
  - transform: '.'
";

#[tokio::test]
async fn a_run_with_a_full_journal_ends_dead_and_says_why() {
    if crate::support::sqlite_only("filling a run's journal range in the SQLite file") {
        return;
    }
    let project = TestProject::new("", &[("waits", FLOW)]);
    let node = project.start(&env(&[])).await;
    let run = node
        .engine
        .trigger(manual_event("waits", json!({})))
        .await
        .unwrap()
        .run_id();
    // The wait is journalled, then the run waits, queued.
    let store = node.engine.store().clone();
    assert!(
        eventually(Duration::from_secs(10), || async {
            !store.journal(run).await.unwrap().is_empty()
        })
        .await,
        "the wait was never journalled"
    );
    // Take the last key of the run's range, as 2^20 entries would.
    let mut connection = sqlx::sqlite::SqliteConnection::connect(&format!(
        "sqlite://{}",
        store_file(&project).display()
    ))
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO journal (key, step_index, step_id, attempt, status, started_at, duration_ms) \
         SELECT seq * 1048576 + 1048575, 0, 'filler', 1, 'succeeded', 0, 0 FROM runs WHERE id = $1",
    )
    .bind(run.as_bytes().to_vec())
    .execute(&mut connection)
    .await
    .unwrap();
    connection.close().await.unwrap();

    let ended = node
        .engine
        .wait_for(run, Duration::from_secs(20))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended.status, RunStatus::Dead, "{ended:?}");
    let error = ended.error.unwrap_or_default();
    assert!(error.contains("journal entries"), "{error}");
    node.stop().await.unwrap();
}
