//! Run-level retries, dead letters and replay, and stored credentials.

use std::time::Duration;

use chrono::Utc;
use patchbay_store::{
    Claim, REPLAY_BATCH, RunId, RunOutcome, RunStatus, Store, StoreError, replay_dead,
};
use serde_json::json;

use crate::{LONG, entry, entry_under, first_claim, new_run, open};

fn dead(error: &str) -> RunOutcome {
    RunOutcome {
        status: RunStatus::Dead,
        output: None,
        error: Some(error.to_owned()),
    }
}

/// A run of `orders` that journalled one step, then died with `error`.
async fn one_dead_run(store: &dyn Store, error: &str) -> patchbay_store::NewRun {
    let run = new_run("orders", None);
    store.enqueue(std::slice::from_ref(&run)).await.unwrap();
    store.claim("w1", 1, LONG).await.unwrap();
    store
        .record_step("w1", &entry(run.id, 0, None), None)
        .await
        .unwrap();
    store
        .finish("w1", first_claim(run.id), &dead(error))
        .await
        .unwrap();
    run
}

#[tokio::test]
async fn reschedule_queues_the_run_for_later_and_keeps_its_journal() {
    let (store, _dir) = open().await;
    let run = new_run("orders", None);
    store.enqueue(std::slice::from_ref(&run)).await.unwrap();
    store.claim("w1", 1, LONG).await.unwrap();
    store
        .record_step("w1", &entry(run.id, 0, None), None)
        .await
        .unwrap();

    let due = Utc::now() + chrono::Duration::milliseconds(300);
    store
        .reschedule("w1", first_claim(run.id), due, "payments: 503")
        .await
        .unwrap();
    let stored = store.run(run.id).await.unwrap().unwrap();
    assert_eq!(stored.status, RunStatus::Queued);
    assert_eq!(stored.retries, 1);
    assert_eq!(stored.error.as_deref(), Some("payments: 503"));
    assert_eq!(stored.lease_owner, None);
    assert_eq!(
        stored.next_attempt_at.timestamp_millis(),
        due.timestamp_millis()
    );

    // Not claimable before it is due, claimable after, journal intact.
    assert!(store.claim("w2", 1, LONG).await.unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(350)).await;
    let claimed = store.claim("w2", 1, LONG).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].attempts, 2);
    assert_eq!(claimed[0].retries, 1);
    assert_eq!(store.journal(run.id).await.unwrap().len(), 1);

    // Only the lease holder may reschedule.
    let stolen = store
        .reschedule("w1", first_claim(run.id), Utc::now(), "x")
        .await;
    assert!(
        matches!(stolen, Err(StoreError::LeaseLost { .. })),
        "{stolen:?}"
    );
}

#[tokio::test]
async fn replay_requeues_only_dead_runs() {
    let (store, _dir) = open().await;
    let dead_run = new_run("orders", None);
    let ok_run = new_run("orders", None);
    let queued_run = new_run("orders", None);
    store
        .enqueue(&[dead_run.clone(), ok_run.clone()])
        .await
        .unwrap();
    store.claim("w1", 2, LONG).await.unwrap();
    store
        .enqueue(std::slice::from_ref(&queued_run))
        .await
        .unwrap();
    store
        .record_step("w1", &entry(dead_run.id, 0, None), None)
        .await
        .unwrap();
    store
        // Due before the queued run, so the next claim takes it.
        .reschedule(
            "w1",
            first_claim(dead_run.id),
            Utc::now() - chrono::Duration::hours(1),
            "first",
        )
        .await
        .unwrap();
    let again = store.claim("w1", 1, LONG).await.unwrap();
    store
        .finish(
            "w1",
            Claim::of(&again[0]),
            &dead("payments: 503 (after 3 attempts)"),
        )
        .await
        .unwrap();
    store
        .finish("w1", first_claim(ok_run.id), &crate::succeeded(json!(1)))
        .await
        .unwrap();

    let replayed = store
        .replay(&[dead_run.id, ok_run.id, queued_run.id], false)
        .await
        .unwrap();
    assert_eq!(replayed, vec![dead_run.id]);
    let run = store.run(dead_run.id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Queued);
    assert_eq!((run.retries, run.error, run.finished_at), (0, None, None));
    assert_eq!(
        store.run(ok_run.id).await.unwrap().unwrap().status,
        RunStatus::Succeeded
    );
    // Resuming keeps the journal current.
    assert!(store.journal(dead_run.id).await.unwrap()[0].current);
    // A run that is no longer dead is not replayed twice.
    assert!(
        store
            .replay(&[dead_run.id], false)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Enqueues `n` runs of `flow` and lets each die.
async fn dead_runs(store: &dyn Store, flow: &str, n: usize) -> Vec<RunId> {
    let runs: Vec<_> = (0..n).map(|_| new_run(flow, None)).collect();
    store.enqueue(&runs).await.unwrap();
    let claimed = store.claim("w1", n as u32, LONG).await.unwrap();
    assert_eq!(claimed.len(), n);
    for run in &runs {
        store
            .finish("w1", first_claim(run.id), &dead("boom"))
            .await
            .unwrap();
    }
    runs.iter().map(|run| run.id).collect()
}

#[tokio::test]
async fn replay_dead_takes_every_dead_run_of_a_flow_over_several_batches() {
    let (store, _dir) = open().await;
    let mut orders = dead_runs(&*store, "orders", REPLAY_BATCH as usize + 1).await;
    let refunds = dead_runs(&*store, "refunds", 1).await;

    let done = replay_dead(&*store, Some("orders"), false).await.unwrap();
    assert_eq!(done.found, orders.len());
    let mut replayed = done.replayed;
    replayed.sort();
    orders.sort();
    assert_eq!(replayed, orders, "each dead run of the flow once");
    for id in [orders[0], orders[REPLAY_BATCH as usize]] {
        let run = store.run(id).await.unwrap().unwrap();
        assert_eq!(run.status, RunStatus::Queued);
    }
    let other = store.run(refunds[0]).await.unwrap().unwrap();
    assert_eq!(
        other.status,
        RunStatus::Dead,
        "another flow's run stays dead"
    );

    // Any flow: only the run still dead.
    let done = replay_dead(&*store, None, true).await.unwrap();
    assert_eq!((done.found, done.replayed), (1, refunds));
    let done = replay_dead(&*store, None, false).await.unwrap();
    assert_eq!((done.found, done.replayed.len()), (0, 0));
}

#[tokio::test]
async fn replay_from_the_start_sets_the_journal_aside() {
    let (store, _dir) = open().await;
    let run = one_dead_run(store.as_ref(), "boom").await;

    assert_eq!(store.replay(&[run.id], true).await.unwrap(), vec![run.id]);
    let again = store.claim("w1", 1, LONG).await.unwrap();
    store
        .record_step("w1", &entry_under(Claim::of(&again[0]), 0, None), None)
        .await
        .unwrap();
    let journal = store.journal(run.id).await.unwrap();
    let current: Vec<bool> = journal.iter().map(|e| e.current).collect();
    assert_eq!(current, vec![false, true], "old entry kept, set aside");
}

#[tokio::test]
async fn replay_with_an_edited_input_starts_over_and_keeps_every_earlier_input() {
    let (store, _dir) = open().await;
    let run = one_dead_run(store.as_ref(), "bad amount").await;
    let first_input = run.input.clone();

    let corrected = json!({ "amount": 100, "note": "fixed by hand" });
    assert!(store.replay_with_input(run.id, &corrected).await.unwrap());
    let stored = store.run(run.id).await.unwrap().unwrap();
    assert_eq!(stored.status, RunStatus::Queued);
    assert_eq!(stored.input, corrected);
    let edits = store.input_edits(run.id).await.unwrap();
    assert_eq!(edits.len(), 1);
    assert_eq!(edits[0].previous, first_input);

    // A queued run is not replayed: nothing changes.
    assert!(!store.replay_with_input(run.id, &json!({})).await.unwrap());
    assert_eq!(store.run(run.id).await.unwrap().unwrap().input, corrected);
    assert_eq!(store.input_edits(run.id).await.unwrap().len(), 1);

    // The new attempt runs every step again: the old entry is set aside.
    let again = store.claim("w1", 1, LONG).await.unwrap();
    assert_eq!(again[0].input, corrected, "the worker gets the new input");
    store
        .record_step("w1", &entry_under(Claim::of(&again[0]), 0, None), None)
        .await
        .unwrap();
    let current: Vec<bool> = store
        .journal(run.id)
        .await
        .unwrap()
        .iter()
        .map(|e| e.current)
        .collect();
    assert_eq!(current, vec![false, true]);

    // Edited twice: both earlier inputs kept, oldest first.
    store
        .finish("w1", Claim::of(&again[0]), &dead("still wrong"))
        .await
        .unwrap();
    assert!(
        store
            .replay_with_input(run.id, &json!({ "amount": 5 }))
            .await
            .unwrap()
    );
    let previous: Vec<_> = store
        .input_edits(run.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.previous)
        .collect();
    assert_eq!(previous, vec![first_input, corrected]);

    // No such run: false, and nothing recorded.
    let unknown = RunId::now_v7();
    assert!(!store.replay_with_input(unknown, &json!({})).await.unwrap());
    assert!(store.input_edits(unknown).await.unwrap().is_empty());
}

#[tokio::test]
async fn purged_runs_take_their_replaced_inputs_with_them() {
    let (store, _dir) = open().await;
    let run = new_run("orders", None);
    store.enqueue(std::slice::from_ref(&run)).await.unwrap();
    store.claim("w1", 1, LONG).await.unwrap();
    store
        .finish("w1", first_claim(run.id), &dead("boom"))
        .await
        .unwrap();
    assert!(
        store
            .replay_with_input(run.id, &json!({ "n": 2 }))
            .await
            .unwrap()
    );
    let again = store.claim("w1", 1, LONG).await.unwrap();
    store
        .finish("w1", Claim::of(&again[0]), &dead("boom"))
        .await
        .unwrap();
    let cutoff = Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(store.purge_finished(cutoff, 10).await.unwrap(), 1);
    assert!(store.input_edits(run.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn dead_runs_are_grouped_by_flow_and_error_largest_first() {
    let (store, _dir) = open().await;
    let runs: Vec<_> = (0..5)
        .map(|i| new_run(if i < 4 { "orders" } else { "sync" }, None))
        .collect();
    store.enqueue(&runs).await.unwrap();
    assert_eq!(store.claim("w1", 5, LONG).await.unwrap().len(), 5);
    for (run, error) in runs.iter().zip([
        "chat: 400 unknown channel",
        "chat: 400 unknown channel",
        "chat: 400 unknown channel",
        "payments: 402 card declined",
        "chat: 400 unknown channel",
    ]) {
        store
            .finish("w1", first_claim(run.id), &dead(error))
            .await
            .unwrap();
    }
    let groups: Vec<(String, String, u64)> = store
        .error_groups(RunStatus::Dead, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|g| (g.flow, g.error, g.count))
        .collect();
    assert_eq!(
        groups,
        vec![
            ("orders".into(), "chat: 400 unknown channel".into(), 3),
            ("orders".into(), "payments: 402 card declined".into(), 1),
            ("sync".into(), "chat: 400 unknown channel".into(), 1),
        ]
    );
    let of_orders = store
        .error_groups(RunStatus::Dead, Some("orders"), 1)
        .await
        .unwrap();
    assert_eq!(of_orders.len(), 1, "limited");
    assert_eq!(
        of_orders[0].latest_run, runs[2].id,
        "the newest of the group"
    );
    assert!(
        store
            .error_groups(RunStatus::Queued, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn credentials_are_stored_and_replaced_by_name() {
    let (store, _dir) = open().await;
    assert_eq!(store.credential("crm.refresh_token").await.unwrap(), None);
    store
        .save_credential("crm.refresh_token", "r1")
        .await
        .unwrap();
    store
        .save_credential("crm.refresh_token", "r2")
        .await
        .unwrap();
    assert_eq!(
        store
            .credential("crm.refresh_token")
            .await
            .unwrap()
            .as_deref(),
        Some("r2")
    );
}

#[tokio::test]
async fn purge_deletes_old_finished_runs_with_their_journal_only() {
    let (store, _dir) = open().await;
    let runs: Vec<_> = (0..4).map(|_| new_run("orders", None)).collect();
    store.enqueue(&runs).await.unwrap();
    store.claim("w1", 3, LONG).await.unwrap();
    for run in &runs[..3] {
        store
            .record_step("w1", &entry(run.id, 0, None), None)
            .await
            .unwrap();
    }
    store
        .finish("w1", first_claim(runs[0].id), &crate::succeeded(json!(1)))
        .await
        .unwrap();
    store
        .finish("w1", first_claim(runs[1].id), &dead("boom"))
        .await
        .unwrap();
    // runs[2] is still running and runs[3] still queued.

    let cutoff = Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(store.purge_finished(cutoff, 1).await.unwrap(), 1, "bounded");
    assert_eq!(store.purge_finished(cutoff, 100).await.unwrap(), 1);
    assert_eq!(store.purge_finished(cutoff, 100).await.unwrap(), 0);
    for (run, kept) in runs.iter().zip([false, false, true, true]) {
        assert_eq!(store.run(run.id).await.unwrap().is_some(), kept);
    }
    assert!(store.journal(runs[0].id).await.unwrap().is_empty());
    assert_eq!(store.journal(runs[2].id).await.unwrap().len(), 1);

    // Finished after the cutoff: kept.
    let fresh = new_run("orders", None);
    store.enqueue(std::slice::from_ref(&fresh)).await.unwrap();
    store.claim("w1", 10, LONG).await.unwrap();
    store
        .finish("w1", first_claim(fresh.id), &crate::succeeded(json!(1)))
        .await
        .unwrap();
    let past = Utc::now() - chrono::Duration::seconds(60);
    assert_eq!(store.purge_finished(past, 100).await.unwrap(), 0);
}
