//! Cancelling runs: a cancelled run never runs again, and the worker that
//! held it can write nothing more.

use std::time::Duration;

use chrono::Utc;
use patchbay_store::{CancelOutcome, RunId, RunStatus, StoreError};
use serde_json::json;

use crate::{LONG, entry, first_claim, new_run, open, succeeded};

#[tokio::test]
async fn a_queued_run_is_cancelled_and_never_claimed() {
    let (store, _dir) = open().await;
    let run = new_run("orders", None);
    store.enqueue(std::slice::from_ref(&run)).await.unwrap();

    let CancelOutcome::Cancelled(cancelled) = store.cancel(run.id).await.unwrap() else {
        panic!("a queued run was not cancelled");
    };
    assert_eq!(cancelled.status, RunStatus::Cancelled);
    assert!(cancelled.finished_at.is_some());
    assert_eq!(cancelled.lease_owner, None);
    assert!(store.claim("w1", 10, LONG).await.unwrap().is_empty());
    // Cancelled runs are not dead letters: replay leaves them alone.
    assert!(store.replay(&[run.id], false).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_running_run_is_cancelled_and_its_worker_can_write_nothing_more() {
    let (store, _dir) = open().await;
    let run = new_run("orders", None);
    store.enqueue(std::slice::from_ref(&run)).await.unwrap();
    store
        .claim("w1", 1, Duration::from_millis(100))
        .await
        .unwrap();
    store
        .record_step("w1", &entry(run.id, 0, None), None)
        .await
        .unwrap();

    assert!(matches!(
        store.cancel(run.id).await.unwrap(),
        CancelOutcome::Cancelled(_)
    ));
    let step = store.record_step("w1", &entry(run.id, 1, None), None).await;
    assert!(
        matches!(step, Err(StoreError::LeaseLost { .. })),
        "{step:?}"
    );
    let finish = store
        .finish("w1", first_claim(run.id), &succeeded(json!(1)))
        .await;
    assert!(
        matches!(finish, Err(StoreError::LeaseLost { .. })),
        "{finish:?}"
    );
    let retry = store
        .reschedule("w1", first_claim(run.id), Utc::now(), "503")
        .await;
    assert!(
        matches!(retry, Err(StoreError::LeaseLost { .. })),
        "{retry:?}"
    );
    assert_eq!(store.renew_leases("w1", &[run.id], LONG).await.unwrap(), 0);
    assert_eq!(store.release("w1").await.unwrap(), 0);

    // Even once the old lease would have expired, no worker takes it up.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(store.claim("w2", 10, LONG).await.unwrap().is_empty());
    let stored = store.run(run.id).await.unwrap().unwrap();
    assert_eq!(stored.status, RunStatus::Cancelled);
    assert_eq!(store.journal(run.id).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_finished_or_unknown_run_is_not_cancelled() {
    let (store, _dir) = open().await;
    let run = new_run("orders", None);
    store.enqueue(std::slice::from_ref(&run)).await.unwrap();
    store.claim("w1", 1, LONG).await.unwrap();
    store
        .finish("w1", first_claim(run.id), &succeeded(json!(1)))
        .await
        .unwrap();

    assert!(matches!(
        store.cancel(run.id).await.unwrap(),
        CancelOutcome::Finished(RunStatus::Succeeded)
    ));
    assert_eq!(
        store.run(run.id).await.unwrap().unwrap().status,
        RunStatus::Succeeded
    );
    assert!(matches!(
        store.cancel(RunId::now_v7()).await.unwrap(),
        CancelOutcome::NotFound
    ));
    // A second cancel finds the run already ended.
    let other = new_run("orders", None);
    store.enqueue(std::slice::from_ref(&other)).await.unwrap();
    store.cancel(other.id).await.unwrap();
    assert!(matches!(
        store.cancel(other.id).await.unwrap(),
        CancelOutcome::Finished(RunStatus::Cancelled)
    ));
}
