//! Enqueue, dedupe, claim, leases, release and finish.

use std::time::Duration;

use chrono::Utc;
use patchbay_store::{
    Claim, EnqueueOutcome, JournalEntry, NewRun, Run, RunFilter, RunOutcome, RunStatus, Store,
    StoreError,
};
use serde_json::json;

use crate::{
    LONG, entry, entry_under, first_claim, new_run, now_ms, open, poll, reclaim, succeeded,
};

#[tokio::test]
async fn enqueue_commits_queued_runs_in_order() {
    let (store, _dir) = open().await;
    let runs = vec![
        new_run("orders", None),
        new_run("orders", Some("k1")),
        new_run("crm", None),
    ];
    let before = now_ms();

    let outcomes = store.enqueue(&runs).await.unwrap();

    let expected: Vec<_> = runs.iter().map(|r| EnqueueOutcome::Created(r.id)).collect();
    assert_eq!(outcomes, expected);
    for new in &runs {
        let run = store.run(new.id).await.unwrap().expect("run committed");
        assert_eq!(run.flow, new.flow);
        assert_eq!(run.status, RunStatus::Queued);
        assert_eq!(run.trigger, "webhook");
        assert_eq!(run.input, new.input);
        assert_eq!(run.headers, new.headers);
        assert_eq!(run.config_version, "v1");
        assert_eq!(run.dedupe_key, new.dedupe_key);
        assert_eq!(run.attempts, 0);
        assert_eq!(run.output, None);
        assert_eq!(run.lease_owner, None);
        assert_eq!(run.lease_expires_at, None);
        assert_eq!(run.finished_at, None);
        assert!(run.created_at >= before);
        assert_eq!(run.next_attempt_at, run.created_at);
    }
    assert!(store.enqueue(&[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn dedupe_within_one_batch() {
    let (store, _dir) = open().await;
    let first = new_run("orders", Some("evt-1"));
    let again = new_run("orders", Some("evt-1"));
    let other = new_run("orders", Some("evt-2"));
    let plain = new_run("orders", None);

    let outcomes = store
        .enqueue(&[first.clone(), again.clone(), other.clone(), plain.clone()])
        .await
        .unwrap();

    assert_eq!(
        outcomes,
        vec![
            EnqueueOutcome::Created(first.id),
            EnqueueOutcome::Duplicate(first.id),
            EnqueueOutcome::Created(other.id),
            EnqueueOutcome::Created(plain.id),
        ]
    );
    assert!(store.run(again.id).await.unwrap().is_none());
    assert_eq!(total(&*store).await, 3);
}

#[tokio::test]
async fn dedupe_across_batches_and_retried_ids() {
    let (store, _dir) = open().await;
    let first = new_run("orders", Some("evt-1"));
    let keyless = new_run("orders", None);
    store
        .enqueue(&[first.clone(), keyless.clone()])
        .await
        .unwrap();

    let again = new_run("orders", Some("evt-1"));
    let fresh = new_run("orders", Some("evt-2"));
    let outcomes = store
        .enqueue(&[again.clone(), fresh.clone(), keyless.clone()])
        .await
        .unwrap();

    assert_eq!(
        outcomes,
        vec![
            EnqueueOutcome::Duplicate(first.id),
            EnqueueOutcome::Created(fresh.id),
            // The same run enqueued twice stands for itself.
            EnqueueOutcome::Duplicate(keyless.id),
        ]
    );
    assert!(store.run(again.id).await.unwrap().is_none());
    assert_eq!(total(&*store).await, 3);
}

#[tokio::test]
async fn dedupe_across_the_inserts_of_a_large_batch() {
    let (store, _dir) = open().await;
    let stored = new_run("orders", Some("old"));
    store.enqueue(std::slice::from_ref(&stored)).await.unwrap();
    // 100 runs are written as inserts of 64, 32 and 4 rows. Duplicates sit in
    // the same insert as their original, in a later one, and in the store.
    let mut batch: Vec<NewRun> = (0..100)
        .map(|i| new_run("orders", Some(&format!("k{i}"))))
        .collect();
    let dups = [(10, 3), (70, 5), (99, 66)];
    for (at, of) in dups {
        batch[at] = new_run("orders", Some(&format!("k{of}")));
    }
    batch[98] = new_run("orders", Some("old"));

    let outcomes = store.enqueue(&batch).await.unwrap();

    let mut expected: Vec<_> = batch
        .iter()
        .map(|r| EnqueueOutcome::Created(r.id))
        .collect();
    for (at, of) in dups {
        expected[at] = EnqueueOutcome::Duplicate(batch[of].id);
    }
    expected[98] = EnqueueOutcome::Duplicate(stored.id);
    assert_eq!(outcomes, expected);
    assert_eq!(total(&*store).await, 1 + 96);
    for (at, _) in dups {
        assert!(store.run(batch[at].id).await.unwrap().is_none());
    }
}

#[tokio::test]
async fn claim_marks_running_oldest_first_within_limit() {
    let (store, _dir) = open().await;
    // Separate batches so the due times differ when the clock ticks between
    // them; ties are broken by id.
    for _ in 0..5 {
        store.enqueue(&[new_run("orders", None)]).await.unwrap();
    }
    let mut expected = queued(&*store).await;
    expected.sort_by_key(|r| (r.next_attempt_at, r.id));
    let before = now_ms();

    let claimed = store.claim("w1", 3, LONG).await.unwrap();

    let ids: Vec<_> = claimed.iter().map(|r| r.id).collect();
    let oldest: Vec<_> = expected.iter().take(3).map(|r| r.id).collect();
    assert_eq!(ids, oldest);
    for run in &claimed {
        assert_eq!(run.status, RunStatus::Running);
        assert_eq!(run.lease_owner.as_deref(), Some("w1"));
        assert_eq!(run.attempts, 1);
        assert!(run.lease_expires_at.unwrap() >= before + LONG);
        assert!(run.updated_at >= before);
        // What was returned is what was stored.
        let stored = store.run(run.id).await.unwrap().unwrap();
        assert_eq!(stored.status, RunStatus::Running);
        assert_eq!(stored.lease_owner.as_deref(), Some("w1"));
        assert_eq!(stored.attempts, 1);
    }

    // Live leases are not handed out again: only the two left are.
    let rest = store.claim("w2", 10, LONG).await.unwrap();
    let rest_ids: Vec<_> = rest.iter().map(|r| r.id).collect();
    let newest: Vec<_> = expected.iter().skip(3).map(|r| r.id).collect();
    assert_eq!(rest_ids, newest);
    assert!(rest.iter().all(|r| r.lease_owner.as_deref() == Some("w2")));

    assert!(store.claim("w3", 10, LONG).await.unwrap().is_empty());
    assert!(store.claim("w3", 0, LONG).await.unwrap().is_empty());
}

#[tokio::test]
async fn expired_lease_is_reclaimed_and_counts_an_attempt() {
    let (store, _dir) = open().await;
    let new = new_run("orders", None);
    store.enqueue(std::slice::from_ref(&new)).await.unwrap();
    let first = store
        .claim("dead-node", 1, Duration::from_millis(1))
        .await
        .unwrap();
    assert_eq!(first.len(), 1);

    let second = poll(Duration::from_secs(5), || async {
        let runs = store.claim("w2", 1, LONG).await.unwrap();
        (!runs.is_empty()).then_some(runs)
    })
    .await;

    assert_eq!(second[0].id, new.id);
    assert_eq!(second[0].attempts, 2);
    assert_eq!(second[0].lease_owner.as_deref(), Some("w2"));

    // The node that lost the run can no longer write to it.
    let lost = store
        .record_step("dead-node", &entry(new.id, 0, None), None)
        .await;
    assert!(
        matches!(lost, Err(StoreError::LeaseLost { run }) if run == new.id),
        "{lost:?}"
    );
    let lost = store
        .finish("dead-node", first_claim(new.id), &succeeded(json!(1)))
        .await;
    assert!(
        matches!(lost, Err(StoreError::LeaseLost { run }) if run == new.id),
        "{lost:?}"
    );
    let second_claim = Claim::of(&second[0]);
    store
        .record_step(
            "w2",
            &JournalEntry {
                attempt: second_claim.attempt,
                ..entry(new.id, 0, None)
            },
            None,
        )
        .await
        .unwrap();
    store
        .finish("w2", second_claim, &succeeded(json!(2)))
        .await
        .unwrap();
    assert_eq!(store.journal(new.id).await.unwrap().len(), 1);
}

/// The claim's number is a fencing token: a worker that stalled past its
/// lease is refused even when the run was taken over by a worker of its
/// own node (same owner), and the new claim's writes go through.
#[tokio::test]
async fn a_stale_claim_of_the_same_owner_is_fenced_off() {
    let (store, _dir) = open().await;
    let new = new_run("orders", None);
    store.enqueue(std::slice::from_ref(&new)).await.unwrap();
    let stale = store
        .claim("node-a", 1, Duration::from_millis(1))
        .await
        .unwrap();
    let stale = Claim::of(&stale[0]);
    let current = poll(Duration::from_secs(5), || async {
        let runs = store.claim("node-a", 1, LONG).await.unwrap();
        (!runs.is_empty()).then_some(runs)
    })
    .await;
    let current = Claim::of(&current[0]);
    assert_eq!((stale.attempt, current.attempt), (1, 2));

    let entry_of = |claim: Claim, step| JournalEntry {
        attempt: claim.attempt,
        ..entry(new.id, step, None)
    };
    let refused = [
        store
            .record_step("node-a", &entry_of(stale, 0), Some(&json!({"stale": true})))
            .await,
        store
            .suspend("node-a", stale, Utc::now() + chrono::Duration::hours(1))
            .await,
        store.reschedule("node-a", stale, Utc::now(), "stale").await,
        store
            .finish_with_step("node-a", stale, &succeeded(json!(1)), &entry_of(stale, 1))
            .await,
        store.finish("node-a", stale, &succeeded(json!(1))).await,
    ];
    for result in refused {
        assert!(
            matches!(result, Err(StoreError::LeaseLost { run }) if run == new.id),
            "{result:?}"
        );
    }
    assert!(store.journal(new.id).await.unwrap().is_empty());
    assert_eq!(store.flow_state("orders").await.unwrap(), json!(null));

    store
        .record_step("node-a", &entry_of(current, 0), None)
        .await
        .unwrap();
    store
        .finish_with_step(
            "node-a",
            current,
            &succeeded(json!(2)),
            &entry_of(current, 1),
        )
        .await
        .unwrap();
    let run = store.run(new.id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(run.output, Some(json!(2)));
    assert_eq!(store.journal(new.id).await.unwrap().len(), 2);
}

#[tokio::test]
async fn wrong_owner_is_refused() {
    let (store, _dir) = open().await;
    let new = new_run("orders", None);
    store.enqueue(std::slice::from_ref(&new)).await.unwrap();
    store.claim("w1", 1, LONG).await.unwrap();

    let step = store
        .record_step("w2", &entry(new.id, 0, None), Some(&json!({"cursor": 1})))
        .await;
    assert!(
        matches!(step, Err(StoreError::LeaseLost { run }) if run == new.id),
        "{step:?}"
    );
    let fin = store
        .finish("w2", first_claim(new.id), &succeeded(json!(1)))
        .await;
    assert!(
        matches!(fin, Err(StoreError::LeaseLost { run }) if run == new.id),
        "{fin:?}"
    );

    assert!(store.journal(new.id).await.unwrap().is_empty());
    assert_eq!(store.flow_state("orders").await.unwrap(), json!(null));
    let run = store.run(new.id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Running);
    assert_eq!(run.lease_owner.as_deref(), Some("w1"));

    // A run that was never claimed is not leased to anyone either.
    let unclaimed = new_run("orders", None);
    store
        .enqueue(std::slice::from_ref(&unclaimed))
        .await
        .unwrap();
    let fin = store
        .finish("w1", first_claim(unclaimed.id), &succeeded(json!(1)))
        .await;
    assert!(matches!(fin, Err(StoreError::LeaseLost { .. })), "{fin:?}");
}

#[tokio::test]
async fn finish_records_the_outcome_and_ends_the_lease() {
    let (store, _dir) = open().await;
    let ok = new_run("orders", None);
    let bad = new_run("orders", None);
    store.enqueue(&[ok.clone(), bad.clone()]).await.unwrap();
    store.claim("w1", 2, LONG).await.unwrap();
    let before = now_ms();

    store
        .finish(
            "w1",
            first_claim(ok.id),
            &succeeded(json!({"charged": true})),
        )
        .await
        .unwrap();
    let failed = RunOutcome {
        status: RunStatus::Dead,
        output: None,
        error: Some("upstream returned 500".to_owned()),
    };
    store
        .finish("w1", first_claim(bad.id), &failed)
        .await
        .unwrap();

    let run = store.run(ok.id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(run.output, Some(json!({"charged": true})));
    assert_eq!(run.error, None);
    assert_eq!(run.lease_owner, None);
    assert_eq!(run.lease_expires_at, None);
    assert!(run.finished_at.unwrap() >= before);
    let run = store.run(bad.id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Dead);
    assert_eq!(run.output, None);
    assert_eq!(run.error.as_deref(), Some("upstream returned 500"));

    // Finished runs are neither claimable nor writable any more.
    assert!(store.claim("w2", 10, LONG).await.unwrap().is_empty());
    let again = store
        .finish("w1", first_claim(ok.id), &succeeded(json!(null)))
        .await;
    assert!(
        matches!(again, Err(StoreError::LeaseLost { .. })),
        "{again:?}"
    );
    let step = store.record_step("w1", &entry(ok.id, 1, None), None).await;
    assert!(
        matches!(step, Err(StoreError::LeaseLost { .. })),
        "{step:?}"
    );
}

#[tokio::test]
async fn finish_refuses_a_status_that_is_not_final() {
    let (store, _dir) = open().await;
    let new = new_run("orders", None);
    store.enqueue(std::slice::from_ref(&new)).await.unwrap();
    store.claim("w1", 1, LONG).await.unwrap();

    for status in [RunStatus::Queued, RunStatus::Running] {
        let outcome = RunOutcome {
            status,
            output: None,
            error: None,
        };
        let refused = store.finish("w1", first_claim(new.id), &outcome).await;
        assert!(
            matches!(refused, Err(StoreError::NotFinal { .. })),
            "{refused:?}"
        );
    }
    let run = store.run(new.id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Running);
    assert_eq!(run.lease_owner.as_deref(), Some("w1"));
}

#[tokio::test]
async fn release_requeues_only_the_owners_runs() {
    let (store, _dir) = open().await;
    let runs = vec![
        new_run("orders", None),
        new_run("orders", None),
        new_run("orders", None),
    ];
    store.enqueue(&runs).await.unwrap();
    let mine = store.claim("w1", 2, LONG).await.unwrap();
    let theirs = store.claim("w2", 1, LONG).await.unwrap();
    let mine_id = mine[0].id;
    store
        .record_step("w1", &entry(mine_id, 0, None), None)
        .await
        .unwrap();
    let before = now_ms();

    assert_eq!(store.release("w1").await.unwrap(), 2);

    for run in &mine {
        let run = store.run(run.id).await.unwrap().unwrap();
        assert_eq!(run.status, RunStatus::Queued);
        assert_eq!(run.lease_owner, None);
        assert_eq!(run.lease_expires_at, None);
        assert!(run.next_attempt_at >= before);
    }
    let other = store.run(theirs[0].id).await.unwrap().unwrap();
    assert_eq!(other.status, RunStatus::Running);
    assert_eq!(other.lease_owner.as_deref(), Some("w2"));
    // The journal survives a release.
    assert_eq!(store.journal(mine_id).await.unwrap().len(), 1);

    let reclaimed = store.claim("w3", 10, LONG).await.unwrap();
    let mut got: Vec<_> = reclaimed.iter().map(|r| r.id).collect();
    let mut want: Vec<_> = mine.iter().map(|r| r.id).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    assert!(reclaimed.iter().all(|r| r.attempts == 2));
    assert_eq!(store.release("nobody").await.unwrap(), 0);
}

#[tokio::test]
async fn renewing_keeps_a_short_lease_alive() {
    let (store, _dir) = open().await;
    store
        .enqueue(&[new_run("orders", None), new_run("orders", None)])
        .await
        .unwrap();
    let claimed = store
        .claim("w1", 2, Duration::from_millis(1))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    let before = now_ms();

    let ids: Vec<_> = claimed.iter().map(|r| r.id).collect();
    assert_eq!(store.renew_leases("w1", &ids, LONG).await.unwrap(), 2);

    for run in &claimed {
        let run = store.run(run.id).await.unwrap().unwrap();
        assert!(run.lease_expires_at.unwrap() >= before + LONG);
    }
    assert!(store.claim("w2", 10, LONG).await.unwrap().is_empty());
    assert_eq!(store.renew_leases("nobody", &ids, LONG).await.unwrap(), 0);
    assert_eq!(store.renew_leases("w1", &[], LONG).await.unwrap(), 0);
}

async fn total(store: &dyn Store) -> u64 {
    store
        .count_runs()
        .await
        .unwrap()
        .iter()
        .map(|c| c.count)
        .sum()
}

async fn queued(store: &dyn Store) -> Vec<Run> {
    let filter = RunFilter {
        status: Some(RunStatus::Queued),
        limit: 1000,
        ..RunFilter::default()
    };
    store.list_runs(&filter).await.unwrap()
}

#[tokio::test]
async fn claims_without_a_journal_entry_are_counted_as_stalled() {
    let (store, _dir) = open().await;
    let new = new_run("orders", None);
    store.enqueue(std::slice::from_ref(&new)).await.unwrap();

    // Every claim that ends without journalling anything (a node that died mid-step)
    // adds one.
    assert_eq!(reclaim(&*store, "n1").await.stalled_claims, 1);
    assert_eq!(reclaim(&*store, "n2").await.stalled_claims, 2);
    let third = reclaim(&*store, "n3").await;
    assert_eq!(third.stalled_claims, 3);

    // A step journalled during a claim counts as progress: the next claim starts at 1.
    store
        .record_step("n3", &entry_under(Claim::of(&third), 0, None), None)
        .await
        .unwrap();
    assert_eq!(reclaim(&*store, "n4").await.stalled_claims, 1);
    assert_eq!(reclaim(&*store, "n5").await.stalled_claims, 2);

    // A graceful release is not a crash.
    let held = reclaim(&*store, "n6").await;
    assert_eq!(held.stalled_claims, 3);
    store.release("n6").await.unwrap();
    let after_release = store.claim("n7", 1, LONG).await.unwrap();
    assert_eq!(after_release[0].stalled_claims, 1);

    // Dead, then replayed: the count starts again.
    store
        .finish(
            "n7",
            Claim::of(&after_release[0]),
            &RunOutcome {
                status: RunStatus::Dead,
                output: None,
                error: Some("stopped the node".into()),
            },
        )
        .await
        .unwrap();
    store.replay(&[new.id], false).await.unwrap();
    assert_eq!(
        store.claim("n8", 1, LONG).await.unwrap()[0].stalled_claims,
        1
    );
}
