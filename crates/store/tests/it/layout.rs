//! The store's on-disk layout: journal entries keyed by their run's number,
//! the upgrade of a store written before that layout, and what a run's
//! deletion takes with it.

use std::path::Path;

use patchbay_store::{RunStatus, SqliteOptions, SqliteStore, Store, StoreError};
use serde_json::json;

use crate::{LONG, entry, first_claim, new_run, open_sqlite, succeeded};

/// Rows of the journal, counted behind the store's back.
fn journal_rows(path: &Path) -> i64 {
    let connection = rusqlite::Connection::open(path).unwrap();
    connection
        .query_row("SELECT COUNT(*) FROM journal", [], |row| row.get(0))
        .unwrap()
}

#[tokio::test]
async fn a_purged_run_takes_its_entries_and_its_number_starts_afresh() {
    let (store, dir) = open_sqlite().await;
    let path = dir.path().join("patchbay.db");
    let old = new_run("orders", None);
    store.enqueue(std::slice::from_ref(&old)).await.unwrap();
    store.claim("w1", 1, LONG).await.unwrap();
    for step in 0..3 {
        store
            .record_step("w1", &entry(old.id, step, None), None)
            .await
            .unwrap();
    }
    store
        .finish("w1", first_claim(old.id), &succeeded(json!(1)))
        .await
        .unwrap();
    assert_eq!(journal_rows(&path), 3);

    let cutoff = chrono::Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(store.purge_finished(cutoff, 10).await.unwrap(), 1);
    assert_eq!(journal_rows(&path), 0, "the trigger deletes the entries");

    // The newest run was deleted, so SQLite hands its number out again: the
    // new run must not inherit anything.
    let new = new_run("orders", None);
    store.enqueue(std::slice::from_ref(&new)).await.unwrap();
    store.claim("w1", 1, LONG).await.unwrap();
    assert!(store.journal(new.id).await.unwrap().is_empty());
    store
        .record_step("w1", &entry(new.id, 0, None), None)
        .await
        .unwrap();
    assert_eq!(store.journal(new.id).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_full_journal_is_its_own_error_not_a_lost_lease() {
    let (store, dir) = open_sqlite().await;
    let path = dir.path().join("patchbay.db");
    let run = new_run("orders", None);
    store.enqueue(std::slice::from_ref(&run)).await.unwrap();
    store.claim("w1", 1, LONG).await.unwrap();
    // The last key of the run's range is taken, as after 2^20 entries.
    {
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection
            .execute(
                "INSERT INTO journal (key, step_index, step_id, attempt, status, started_at, \
                 duration_ms) \
                 SELECT seq * 1048576 + 1048575, 0, 'a', 1, 'succeeded', 0, 0 \
                 FROM runs WHERE id = ?1",
                [run.id.as_bytes().to_vec()],
            )
            .unwrap();
    }

    let refused = store.record_step("w1", &entry(run.id, 1, None), None).await;
    assert!(
        matches!(
            refused,
            Err(StoreError::JournalFull {
                entries: 1_048_576,
                ..
            })
        ),
        "{refused:?}"
    );
    // Another worker gets the lease error, as before.
    let stranger = store.record_step("w2", &entry(run.id, 1, None), None).await;
    assert!(
        matches!(stranger, Err(StoreError::LeaseLost { .. })),
        "{stranger:?}"
    );
}

/// A store written before journal keys (schema 11): its runs, entries in
/// recording order, superseded marks and claim progress marks survive the
/// upgrade, and its dedupe keys still dedupe.
#[tokio::test]
async fn a_store_from_before_journal_keys_is_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("patchbay.db");
    let older = dir.path().join("migrations");
    std::fs::create_dir(&older).unwrap();
    let all = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    for file in std::fs::read_dir(&all).unwrap() {
        let file = file.unwrap();
        let name = file.file_name().into_string().unwrap();
        if name.as_str() < "0012" {
            std::fs::copy(file.path(), older.join(&name)).unwrap();
        }
    }
    {
        use sqlx::Connection;
        let mut connection = sqlx::sqlite::SqliteConnection::connect(&format!(
            "sqlite://{}?mode=rwc",
            path.display()
        ))
        .await
        .unwrap();
        sqlx::migrate::Migrator::new(older.as_path())
            .await
            .unwrap()
            .run(&mut connection)
            .await
            .unwrap();
        connection.close().await.unwrap();
    }
    let first = "01900000-0000-7000-8000-000000000001";
    let second = "01900000-0000-7000-8000-000000000002";
    {
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection
            .execute_batch(&format!(
                "INSERT INTO runs (id, flow, status, trigger, input, headers, config_version,
                                   dedupe_key, next_attempt_at, created_at, updated_at, attempts,
                                   lease_owner, lease_expires_at, journal_mark,
                                   stalled_claims)
                 VALUES ('{first}', 'orders', 'running', 'webhook', '{{}}', '{{}}', 'v1', 'k-1',
                         0, 0, 0, 1, 'w9', 0, 4, 2),
                        ('{second}', 'orders', 'succeeded', 'webhook', '{{}}', '{{}}', 'v1', NULL,
                         0, 0, 0, 1, NULL, NULL, 0, 0);
                 -- Interleaved, as concurrent runs record them.
                 INSERT INTO journal (seq, run_id, step_index, step_id, attempt, status,
                                      started_at, duration_ms, output, superseded)
                 VALUES (1, '{first}', 0, 'a', 1, 'succeeded', 0, 0, '1', 1),
                        (2, '{second}', 0, 'a', 1, 'succeeded', 0, 0, '2', 0),
                        (3, '{first}', 1, 'b', 1, 'succeeded', 0, 0, '3', 0),
                        (4, '{first}', 2, 'c', 1, 'failed', 0, 0, NULL, 0);"
            ))
            .unwrap();
    }

    let store = SqliteStore::open(SqliteOptions::new(&path)).await.unwrap();
    let first_id = first.parse().unwrap();
    let journal = store.journal(first_id).await.unwrap();
    let steps: Vec<(&str, bool)> = journal
        .iter()
        .map(|e| (e.step_id.as_str(), e.current))
        .collect();
    assert_eq!(steps, [("a", false), ("b", true), ("c", true)]);
    assert_eq!(journal[1].output, Some(json!(3)));
    assert!(journal.iter().all(|e| e.run_id == first_id));
    assert_eq!(
        store.journal(second.parse().unwrap()).await.unwrap().len(),
        1
    );

    // The run's lease has expired. Its progress mark was its newest entry
    // (4) when it was claimed twice without progress: claimed again with
    // no newer entry, that count grows to 3. A mark lost in the upgrade
    // would read as progress and restart it at 1.
    let claimed = store.claim("w1", 1, LONG).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].status, RunStatus::Running);
    assert_eq!(claimed[0].stalled_claims, 3);
    let outcome = store
        .enqueue(&[new_run("orders", Some("k-1"))])
        .await
        .unwrap();
    assert_eq!(
        outcome,
        [patchbay_store::EnqueueOutcome::Duplicate(first_id)]
    );
}

/// The run's output is its last step's: written together, it is stored
/// once, and the journal still reads it for that step. An entry with an
/// output of its own keeps it.
#[tokio::test]
async fn the_last_step_s_output_is_stored_once_with_the_run_s() {
    let (store, dir) = open_sqlite().await;
    let path = dir.path().join("patchbay.db");
    let runs = [new_run("orders", None), new_run("orders", None)];
    store.enqueue(&runs).await.unwrap();
    store.claim("w1", 2, LONG).await.unwrap();
    let reply = json!({"status": 200, "body": {"ok": true}});
    let same = patchbay_store::JournalEntry {
        output: Some(reply.clone()),
        ..entry(runs[0].id, 1, None)
    };
    store
        .finish_with_step(
            "w1",
            first_claim(runs[0].id),
            &succeeded(reply.clone()),
            &same,
        )
        .await
        .unwrap();
    let other = patchbay_store::JournalEntry {
        output: Some(json!("mine")),
        ..entry(runs[1].id, 1, None)
    };
    store
        .finish_with_step(
            "w1",
            first_claim(runs[1].id),
            &succeeded(reply.clone()),
            &other,
        )
        .await
        .unwrap();

    assert_eq!(
        store.journal(runs[0].id).await.unwrap()[0].output,
        Some(reply.clone())
    );
    assert_eq!(
        store.journal(runs[1].id).await.unwrap()[0].output,
        Some(json!("mine"))
    );
    let connection = rusqlite::Connection::open(&path).unwrap();
    let stored: Vec<String> = connection
        .prepare("SELECT output FROM journal ORDER BY key")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(stored, ["", "\"mine\""]);
}
