//! SQLite specifics: settings, files on disk, persistence, concurrent group
//! commits and corrupted rows.

use std::sync::Arc;

use patchbay_store::{EnqueueOutcome, RunStatus, SqliteOptions, SqliteStore, Store, StoreError};
use serde_json::json;
use sqlx::Connection;
use sqlx::sqlite::SqliteConnection;

use crate::{LONG, entry, first_claim, new_run, open_sqlite, succeeded};

#[tokio::test]
async fn connections_use_wal_and_full_sync() {
    let (store, _dir) = open_sqlite().await;

    let settings = store.connection_settings().await.unwrap();

    assert_eq!(settings.journal_mode, "wal");
    assert_eq!(settings.synchronous, 2, "synchronous must be FULL");
    assert!(settings.foreign_keys);
    assert_eq!(settings.busy_timeout_ms, 5000);
    assert!(!settings.query_only);
    // Statement journals (savepoints, multi-row inserts) stay in memory
    // instead of a temporary file created and deleted per transaction.
    assert_eq!(settings.temp_store, 2, "temp_store must be MEMORY");
}

#[tokio::test]
async fn open_creates_missing_folders_and_reports_bad_paths() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join("nested").join("patchbay.db");

    let store = SqliteStore::open(SqliteOptions::new(&path)).await.unwrap();
    store.enqueue(&[new_run("orders", None)]).await.unwrap();
    assert!(path.is_file());
    store.close().await;

    // A regular file where a folder should be.
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"not a folder").unwrap();
    let bad = SqliteStore::open(SqliteOptions::new(blocker.join("patchbay.db"))).await;
    assert!(matches!(bad, Err(StoreError::Open { .. })), "{bad:?}");
}

#[tokio::test]
async fn everything_survives_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("patchbay.db");
    let done = new_run("orders", Some("evt-1"));
    let waiting = new_run("orders", None);
    {
        let store = SqliteStore::open(SqliteOptions::new(&path)).await.unwrap();
        store
            .enqueue(&[done.clone(), waiting.clone()])
            .await
            .unwrap();
        store.claim("w1", 1, LONG).await.unwrap();
        store
            .record_step("w1", &entry(done.id, 0, None), Some(&json!({"cursor": 7})))
            .await
            .unwrap();
        store
            .finish("w1", first_claim(done.id), &succeeded(json!({"ok": true})))
            .await
            .unwrap();
        // Dropped without `close`, as in a crash: the WAL must carry the commits.
    }
    let store = SqliteStore::open(SqliteOptions::new(&path)).await.unwrap();

    let run = store.run(done.id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(run.output, Some(json!({"ok": true})));
    assert_eq!(store.journal(done.id).await.unwrap().len(), 1);
    assert_eq!(
        store.flow_state("orders").await.unwrap(),
        json!({"cursor": 7})
    );
    assert_eq!(
        store.run(waiting.id).await.unwrap().unwrap().status,
        RunStatus::Queued
    );
    // Dedupe keys persist too.
    let again = store
        .enqueue(&[new_run("orders", Some("evt-1"))])
        .await
        .unwrap();
    assert_eq!(again, vec![EnqueueOutcome::Duplicate(done.id)]);
    store.close().await;

    // And once more after a clean close.
    let store = SqliteStore::open(SqliteOptions::new(&path)).await.unwrap();
    assert_eq!(
        store.run(done.id).await.unwrap().unwrap().status,
        RunStatus::Succeeded
    );
    let claimed = store.claim("w2", 10, LONG).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, waiting.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_enqueues_all_commit() {
    const TASKS: usize = 50;
    const BATCHES: usize = 20;
    const PER_BATCH: usize = 5;
    let (store, _dir) = open_sqlite().await;
    let store = Arc::new(store);

    let mut handles = Vec::new();
    for task in 0..TASKS {
        let store = Arc::clone(&store);
        handles.push(tokio::spawn(async move {
            let mut created = Vec::new();
            for batch in 0..BATCHES {
                let runs: Vec<_> = (0..PER_BATCH)
                    .map(|i| {
                        // Every other run carries a (unique) dedupe key.
                        let key = format!("t{task}-b{batch}-r{i}");
                        new_run("load", (i % 2 == 0).then_some(key.as_str()))
                    })
                    .collect();
                let outcomes = store.enqueue(&runs).await.unwrap();
                for (run, outcome) in runs.iter().zip(outcomes) {
                    assert_eq!(outcome, EnqueueOutcome::Created(run.id));
                    created.push(run.id);
                }
            }
            created
        }));
    }
    let mut created = Vec::new();
    for handle in handles {
        created.extend(handle.await.unwrap());
    }

    let expected = (TASKS * BATCHES * PER_BATCH) as u64;
    assert_eq!(created.len() as u64, expected);
    let counts = store.count_runs().await.unwrap();
    assert_eq!(counts.len(), 1);
    assert_eq!(counts[0].status, RunStatus::Queued);
    assert_eq!(counts[0].count, expected);
    for id in created.iter().step_by(97) {
        assert!(store.run(*id).await.unwrap().is_some());
    }
}

#[tokio::test]
async fn corrupt_rows_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("patchbay.db");
    let store = SqliteStore::open(SqliteOptions::new(&path)).await.unwrap();
    let bad_json = new_run("orders", None);
    let bad_status = new_run("orders", None);
    let bad_time = new_run("orders", None);
    let bad_step = new_run("orders", None);
    store
        .enqueue(&[
            bad_json.clone(),
            bad_status.clone(),
            bad_time.clone(),
            bad_step.clone(),
        ])
        .await
        .unwrap();
    store.claim("w1", 4, LONG).await.unwrap();
    store
        .record_step(
            "w1",
            &entry(bad_step.id, 0, None),
            Some(&json!({"cursor": 1})),
        )
        .await
        .unwrap();

    // Damage the rows behind the store's back.
    let mut conn = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let damage = [
        (
            "UPDATE runs SET input = '{\"unterminated' WHERE id = $1",
            bad_json.id,
        ),
        (
            "UPDATE runs SET status = 'exploded' WHERE id = $1",
            bad_status.id,
        ),
        (
            "UPDATE runs SET created_at = 'yesterday' WHERE id = $1",
            bad_time.id,
        ),
        (
            "UPDATE journal SET output = 'nope' \
             WHERE key >> 20 = (SELECT seq FROM runs WHERE id = $1)",
            bad_step.id,
        ),
    ];
    for (sql, id) in damage {
        sqlx::query(sql)
            .bind(id.as_bytes().to_vec())
            .execute(&mut conn)
            .await
            .unwrap();
    }
    sqlx::query("UPDATE flow_state SET state = '[1,'")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    let corrupt = |r: Result<_, StoreError>| match r {
        Err(StoreError::Corrupt { what, .. }) => what,
        other => panic!("expected Corrupt, got {other:?}"),
    };
    assert_eq!(
        corrupt(store.run(bad_json.id).await.map(drop)),
        "runs.input"
    );
    assert_eq!(
        corrupt(store.run(bad_status.id).await.map(drop)),
        "runs.status"
    );
    assert_eq!(
        corrupt(store.run(bad_time.id).await.map(drop)),
        "runs.created_at"
    );
    assert_eq!(
        corrupt(store.journal(bad_step.id).await.map(drop)),
        "journal.output"
    );
    assert_eq!(
        corrupt(store.flow_state("orders").await.map(drop)),
        "flow_state.state"
    );
    assert!(matches!(
        store.count_runs().await,
        Err(StoreError::Corrupt { .. })
    ));
    assert!(matches!(
        store.list_runs(&Default::default()).await,
        Err(StoreError::Corrupt { .. })
    ));
    // Healthy rows remain readable.
    assert!(store.run(bad_step.id).await.unwrap().is_some());
}

#[cfg(unix)]
#[tokio::test]
async fn files_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("patchbay.db");
    let store = SqliteStore::open(SqliteOptions::new(&path)).await.unwrap();
    store.enqueue(&[new_run("f", None)]).await.unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let file = dir.path().join(format!("patchbay.db{suffix}"));
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    store.close().await;

    // A database made readable by others is narrowed when opened.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let store = SqliteStore::open(SqliteOptions::new(&path)).await.unwrap();
    assert_eq!(mode(&path), 0o600);
    store.close().await;
}

#[tokio::test]
async fn a_database_file_removed_under_the_store_is_noticed() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("store");
    let store = SqliteStore::open(SqliteOptions::new(folder.join("patchbay.db")))
        .await
        .unwrap();
    assert_eq!(store.fault(), None);
    store.enqueue(&[new_run("f", None)]).await.unwrap();
    std::fs::remove_dir_all(&folder).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while store.fault().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the removal went unnoticed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let fault = store.fault().unwrap();
    assert!(fault.refuses_events(), "{fault}");
    assert!(fault.to_string().contains("patchbay.db"), "{fault}");
    // Nothing is claimed into a file no restart will find.
    assert!(store.claim("w", 10, LONG).await.unwrap().is_empty());
}

/// SQLite plans with the value of a bare parameter in `LIMIT`, so a
/// statement that binds one is parsed and planned again at every execution
/// (see `src/sqlite/queue.rs`); every `LIMIT` of the store writes `+$n`.
#[test]
fn a_limit_never_binds_a_bare_parameter() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/sqlite");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            for (n, line) in text.lines().enumerate() {
                assert!(
                    !line.contains("LIMIT $") && !line.contains("LIMIT ?"),
                    "{}:{}: a bare parameter in LIMIT: {line}",
                    path.display(),
                    n + 1
                );
            }
            checked += 1;
        }
    }
    assert!(
        checked > 5,
        "read only {checked} files in {}",
        dir.display()
    );
}
