//! The step journal and flow state.

use patchbay_store::{JournalEntry, RunId, RunStatus, StepStatus, Store, StoreError};
use serde_json::json;

use crate::{LONG, entry, first_claim, new_run, open, reclaim};

#[tokio::test]
async fn journal_keeps_recording_order_and_every_field() {
    let (store, _dir) = open().await;
    let new = new_run("sync", None);
    store.enqueue(std::slice::from_ref(&new)).await.unwrap();
    store
        .claim("w1", 1, std::time::Duration::from_millis(1))
        .await
        .unwrap();

    // A plain step, a for_each step's items out of index order (they finish
    // concurrently), a failed attempt, then (the run claimed again) its
    // retry and the collecting entry.
    let mut recorded = vec![entry(new.id, 0, None)];
    for item in [2, 0, 1] {
        recorded.push(entry(new.id, 1, Some(item)));
    }
    recorded.push(JournalEntry {
        status: StepStatus::Failed,
        output: None,
        request: None,
        error: Some("timeout after 5s".to_owned()),
        duration_ms: 5000,
        ..entry(new.id, 2, None)
    });
    recorded.push(JournalEntry {
        attempt: 2,
        ..entry(new.id, 2, None)
    });
    recorded.push(JournalEntry {
        output: Some(json!([{"id": 0}, {"id": 1}, {"id": 2}])),
        attempt: 2,
        ..entry(new.id, 1, None)
    });
    for e in &recorded {
        if e.attempt == 2 && store.run(new.id).await.unwrap().unwrap().attempts == 1 {
            reclaim(&*store, "w1").await;
        }
        store.record_step("w1", e, None).await.unwrap();
    }

    let journal = store.journal(new.id).await.unwrap();

    assert_eq!(journal.len(), recorded.len());
    for (got, want) in journal.iter().zip(&recorded) {
        assert_eq!(got.run_id, want.run_id);
        assert_eq!(got.step_index, want.step_index);
        assert_eq!(got.step_id, want.step_id);
        assert_eq!(got.item, want.item);
        assert_eq!(got.attempt, want.attempt);
        assert_eq!(got.status, want.status);
        assert_eq!(got.started_at, want.started_at);
        assert_eq!(got.duration_ms, want.duration_ms);
        assert_eq!(got.request, want.request);
        assert_eq!(got.output, want.output);
        assert_eq!(got.error, want.error);
    }
    assert!(store.journal(RunId::now_v7()).await.unwrap().is_empty());
}

#[tokio::test]
async fn journals_of_runs_do_not_mix() {
    let (store, _dir) = open().await;
    let a = new_run("sync", None);
    let b = new_run("sync", None);
    store.enqueue(&[a.clone(), b.clone()]).await.unwrap();
    store.claim("w1", 2, LONG).await.unwrap();
    for step in 0..3 {
        store
            .record_step("w1", &entry(a.id, step, None), None)
            .await
            .unwrap();
        store
            .record_step("w1", &entry(b.id, step + 10, None), None)
            .await
            .unwrap();
    }

    let steps: Vec<_> = store
        .journal(a.id)
        .await
        .unwrap()
        .iter()
        .map(|e| e.step_index)
        .collect();
    assert_eq!(steps, vec![0, 1, 2]);
    let steps: Vec<_> = store
        .journal(b.id)
        .await
        .unwrap()
        .iter()
        .map(|e| e.step_index)
        .collect();
    assert_eq!(steps, vec![10, 11, 12]);
}

#[tokio::test]
async fn flow_state_is_written_with_its_journal_entry() {
    let (store, _dir) = open().await;
    assert_eq!(store.flow_state("sync").await.unwrap(), json!(null));
    let new = new_run("sync", None);
    store.enqueue(std::slice::from_ref(&new)).await.unwrap();
    store.claim("w1", 1, LONG).await.unwrap();

    store
        .record_step("w1", &entry(new.id, 0, None), Some(&json!({"cursor": "a"})))
        .await
        .unwrap();
    assert_eq!(
        store.flow_state("sync").await.unwrap(),
        json!({"cursor": "a"})
    );

    // Replaced, not merged; a step without state leaves it alone.
    store
        .record_step("w1", &entry(new.id, 1, None), Some(&json!({"seen": 3})))
        .await
        .unwrap();
    store
        .record_step("w1", &entry(new.id, 2, None), None)
        .await
        .unwrap();
    assert_eq!(store.flow_state("sync").await.unwrap(), json!({"seen": 3}));

    // A refused entry writes no state either.
    let refused = store
        .record_step("w2", &entry(new.id, 3, None), Some(&json!({"stale": true})))
        .await;
    assert!(
        matches!(refused, Err(StoreError::LeaseLost { .. })),
        "{refused:?}"
    );
    assert_eq!(store.flow_state("sync").await.unwrap(), json!({"seen": 3}));
    assert_eq!(store.journal(new.id).await.unwrap().len(), 3);

    // State belongs to the run's flow only.
    assert_eq!(store.flow_state("other").await.unwrap(), json!(null));
}

#[tokio::test]
async fn flow_state_can_be_put_outside_a_run_and_a_step_replaces_it() {
    let (store, _dir) = open().await;
    store
        .put_flow_state("sync", &json!({"cursor": "seed"}))
        .await
        .unwrap();
    assert_eq!(
        store.flow_state("sync").await.unwrap(),
        json!({"cursor": "seed"})
    );
    assert_eq!(store.flow_state("other").await.unwrap(), json!(null));

    let new = new_run("sync", None);
    store.enqueue(std::slice::from_ref(&new)).await.unwrap();
    store.claim("w1", 1, LONG).await.unwrap();
    store
        .record_step("w1", &entry(new.id, 0, None), Some(&json!({"cursor": "b"})))
        .await
        .unwrap();
    assert_eq!(
        store.flow_state("sync").await.unwrap(),
        json!({"cursor": "b"})
    );
}

/// Concurrent runs' journal entries and endings are committed together;
/// a write whose lease is gone fails alone.
#[tokio::test]
async fn concurrent_writes_succeed_together_and_lease_failures_stay_alone() {
    // The commit count is the SQLite writer's group commit.
    let (store, _dir) = crate::open_sqlite().await;
    let store = std::sync::Arc::new(store);
    let runs: Vec<_> = (0..64).map(|_| new_run("orders", None)).collect();
    store.enqueue(&runs).await.unwrap();
    assert_eq!(store.claim("w1", 64, LONG).await.unwrap().len(), 64);
    let commits_before = store.write_commits();

    let mut tasks = Vec::new();
    for (n, run) in runs.iter().enumerate() {
        let store = store.clone();
        let id = run.id;
        tasks.push(tokio::spawn(async move {
            // Every fourth run also gets a write from a worker without the lease.
            let intruder = if n % 4 == 0 {
                Some(store.record_step("w2", &entry(id, 9, None), None).await)
            } else {
                None
            };
            let state = json!({ "last": n });
            store
                .record_step("w1", &entry(id, 0, None), Some(&state))
                .await
                .unwrap();
            store
                .finish("w1", first_claim(id), &crate::succeeded(json!(n)))
                .await
                .unwrap();
            intruder
        }));
    }
    let mut refused = 0;
    for task in tasks {
        if let Some(result) = task.await.unwrap() {
            assert!(
                matches!(result, Err(StoreError::LeaseLost { .. })),
                "{result:?}"
            );
            refused += 1;
        }
    }
    assert_eq!(refused, 16);
    // 144 writes were waiting together, a few rounds of them: they shared
    // their commits.
    let commits = store.write_commits() - commits_before;
    assert!(commits <= 144 / 4, "{commits} commits for 144 writes");
    for (n, run) in runs.iter().enumerate() {
        let stored = store.run(run.id).await.unwrap().unwrap();
        assert_eq!(stored.status, RunStatus::Succeeded);
        assert_eq!(stored.output, Some(json!(n)));
        let journal = store.journal(run.id).await.unwrap();
        assert_eq!(journal.len(), 1, "the intruder's entry was not written");
    }
    let state = store.flow_state("orders").await.unwrap();
    assert!(state["last"].is_u64(), "{state}");
}

/// The last step's entry and the run's end land together, or not at all.
#[tokio::test]
async fn the_last_step_and_the_run_end_are_written_together() {
    let (store, _dir) = open().await;
    let runs = [new_run("orders", None), new_run("orders", None)];
    store.enqueue(&runs).await.unwrap();
    assert_eq!(store.claim("w1", 2, LONG).await.unwrap().len(), 2);
    let (done, lost) = (runs[0].id, runs[1].id);

    store
        .finish_with_step(
            "w1",
            first_claim(done),
            &crate::succeeded(json!(1)),
            &entry(done, 1, None),
        )
        .await
        .unwrap();
    let stored = store.run(done).await.unwrap().unwrap();
    assert_eq!(stored.status, RunStatus::Succeeded);
    assert_eq!(stored.output, Some(json!(1)));
    assert_eq!(store.journal(done).await.unwrap().len(), 1);

    // Another worker holds no lease: neither the entry nor the end is kept.
    let refused = store
        .finish_with_step(
            "w2",
            first_claim(lost),
            &crate::succeeded(json!(2)),
            &entry(lost, 1, None),
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::LeaseLost { .. })),
        "{refused:?}"
    );
    assert!(store.journal(lost).await.unwrap().is_empty());
    assert_eq!(
        store.run(lost).await.unwrap().unwrap().status,
        RunStatus::Running
    );

    // Not a final status: refused before anything is written.
    let running = patchbay_store::RunOutcome {
        status: RunStatus::Running,
        output: None,
        error: None,
    };
    assert!(matches!(
        store
            .finish_with_step("w1", first_claim(lost), &running, &entry(lost, 1, None))
            .await,
        Err(StoreError::NotFinal { .. })
    ));
    assert!(store.journal(lost).await.unwrap().is_empty());
}
