//! The store's clock: due times, leases and recorded times follow the
//! clock the store was opened with, here tokio's paused clock, so a test
//! moves an hour ahead in no time.
//!
//! Auto-advance is held off: paused time would otherwise jump to the next
//! timer whenever the runtime waits for SQLite's threads, and could reach
//! the pool's acquire timeout while a connection opens. The clock moves
//! only where the test advances it, so every recorded time is exact.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use patchbay_store::{Claim, Clock, RunStatus, Store, TokioClock};

use crate::{first_claim, new_run, succeeded};

const MINUTE: Duration = Duration::from_secs(60);
const LEASE: Duration = Duration::from_secs(600);

/// Holds tokio's auto-advance off until dropped: tokio does not
/// auto-advance paused time while a blocking task runs.
fn hold_auto_advance() -> std::sync::mpsc::Sender<()> {
    let (hold, release) = std::sync::mpsc::channel::<()>();
    drop(tokio::task::spawn_blocking(move || {
        let _ = release.recv();
    }));
    hold
}

/// A fresh store on a clock that follows tokio's, with what keeps it.
async fn open_on_tokio_clock() -> (Box<dyn Store>, Arc<TokioClock>, crate::Keep) {
    let clock = Arc::new(TokioClock::new());
    let (store, keep) = crate::open_with_clock(clock.clone()).await;
    (store, clock, keep)
}

/// `time` as the store keeps it, in whole milliseconds.
fn ms(time: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(time.timestamp_millis()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn due_times_leases_and_recorded_times_follow_the_stores_clock() {
    let _hold = hold_auto_advance();
    let (store, clock, _dir) = open_on_tokio_clock().await;
    let start = ms(clock.now());

    let run = new_run("orders", None);
    store.enqueue(std::slice::from_ref(&run)).await.unwrap();
    let queued = store.run(run.id).await.unwrap().unwrap();
    assert_eq!(queued.created_at, start);
    assert_eq!(queued.next_attempt_at, start);

    // Claimed, then parked for an hour of the clock.
    let claimed = store.claim("a", 1, LEASE).await.unwrap();
    assert_eq!(
        claimed[0].lease_expires_at,
        Some(start + TimeDelta::minutes(10))
    );
    let until = start + TimeDelta::hours(1);
    store
        .suspend("a", first_claim(run.id), until)
        .await
        .unwrap();
    tokio::time::advance(59 * MINUTE).await;
    assert!(
        store.claim("a", 1, LEASE).await.unwrap().is_empty(),
        "claimed a minute before its due time"
    );
    tokio::time::advance(MINUTE).await;
    let claimed = store.claim("a", 1, LEASE).await.unwrap();
    assert_eq!(claimed.len(), 1, "not claimed once due");
    assert_eq!(
        claimed[0].lease_expires_at,
        Some(until + TimeDelta::minutes(10))
    );

    // Node `a` goes silent: its lease holds for ten minutes, then expires.
    tokio::time::advance(10 * MINUTE).await;
    assert!(
        store.claim("b", 1, LEASE).await.unwrap().is_empty(),
        "taken over while the lease held"
    );
    tokio::time::advance(Duration::from_millis(1)).await;
    let taken = store.claim("b", 1, LEASE).await.unwrap();
    assert_eq!(taken.len(), 1, "not taken over once the lease expired");
    assert_eq!(taken[0].attempts, 3);

    tokio::time::advance(MINUTE).await;
    store
        .finish("b", Claim::of(&taken[0]), &succeeded(serde_json::json!({})))
        .await
        .unwrap();
    let done = store.run(run.id).await.unwrap().unwrap();
    assert_eq!(done.status, RunStatus::Succeeded);
    // 71 minutes of the clock, and next to none of the wall clock's.
    let finished = start + TimeDelta::minutes(71) + TimeDelta::milliseconds(1);
    assert_eq!(done.finished_at, Some(finished));
    assert_eq!(done.updated_at, finished);
}

/// A run committed with a lease is stored as a claim would leave it, which
/// [`patchbay_store::NewRun::into_leased`] reproduces in memory; no other owner
/// claims it until the lease expires, and a batch mixes leased and queued
/// runs.
#[tokio::test(start_paused = true)]
async fn a_run_committed_with_a_lease_is_claimed_already() {
    let _hold = hold_auto_advance();
    let (store, clock, _dir) = open_on_tokio_clock().await;
    let start = ms(clock.now());

    let lease = patchbay_store::IntakeLease {
        owner: "a".into(),
        duration: LEASE,
        starts_now: true,
    };
    let mut leased = new_run("orders", None);
    leased.lease = Some(lease.clone());
    let queued = new_run("orders", None);
    store
        .enqueue(&[leased.clone(), queued.clone()])
        .await
        .unwrap();

    let stored = store.run(leased.id).await.unwrap().unwrap();
    assert_eq!(
        serde_json::to_value(&stored).unwrap(),
        serde_json::to_value(leased.clone().into_leased(clock.now()).expect("a lease")).unwrap()
    );
    assert_eq!(stored.status, RunStatus::Running);
    assert_eq!(stored.attempts, 1);
    assert_eq!(stored.lease_owner.as_deref(), Some("a"));
    assert_eq!(
        stored.lease_expires_at,
        Some(start + TimeDelta::minutes(10))
    );
    assert_eq!(
        store.run(queued.id).await.unwrap().unwrap().status,
        RunStatus::Queued
    );

    // Only the queued run is there to claim.
    let claimed = store.claim("b", 8, LEASE).await.unwrap();
    assert_eq!(
        claimed.iter().map(|run| run.id).collect::<Vec<_>>(),
        [queued.id]
    );
    // The lease holder finishes as after a claim.
    for (owner, run) in [("a", leased.id), ("b", queued.id)] {
        store
            .finish(owner, first_claim(run), &succeeded(serde_json::json!({})))
            .await
            .expect("the lease holder finishes its run");
    }

    // A leased run whose node went silent is taken over once the lease
    // expires, with its claims counted as for any run.
    let mut orphan = new_run("orders", None);
    orphan.lease = Some(lease);
    store.enqueue(std::slice::from_ref(&orphan)).await.unwrap();
    tokio::time::advance(10 * MINUTE).await;
    assert!(store.claim("b", 8, LEASE).await.unwrap().is_empty());
    tokio::time::advance(Duration::from_millis(1)).await;
    let taken = store.claim("b", 8, LEASE).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].id, orphan.id);
    assert_eq!(taken[0].attempts, 2);
    assert_eq!(taken[0].stalled_claims, 2);
}
