//! Bucketed activity per flow and per connector.

use std::time::Duration;

use chrono::Utc;
use patchbay_store::{RunOutcome, RunStatus, StatsWindow, StepStatus};
use serde_json::json;

use crate::{LONG, entry, first_claim, new_run, now_ms, open, succeeded};

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn stats_count_runs_and_calls_per_bucket() {
    let (store, _dir) = open().await;
    let orders: Vec<_> = (0..3).map(|_| new_run("orders", None)).collect();
    let sync = new_run("sync", None);
    let mut all = orders.clone();
    all.push(sync.clone());
    store.enqueue(&all).await.unwrap();
    assert_eq!(store.claim("w1", 4, LONG).await.unwrap().len(), 4);

    // Twenty calls to crm lasting 1..=20 ms, the last two failed; one call
    // to chat; a transform step (no request) that is no call at all.
    for ms in 1..=20u64 {
        let mut call = entry(orders[0].id, 0, Some(ms as u32));
        call.request = Some(json!({"connector": "crm", "method": "GET", "url": "http://crm/x"}));
        call.duration_ms = ms;
        if ms > 18 {
            call.status = StepStatus::Failed;
            call.error = Some("crm: 503".into());
        }
        store.record_step("w1", &call, None).await.unwrap();
    }
    let mut chat = entry(orders[1].id, 0, None);
    chat.request = Some(json!({"connector": "chat", "method": "POST", "url": "http://chat/m"}));
    store.record_step("w1", &chat, None).await.unwrap();
    let mut transform = entry(orders[2].id, 0, None);
    transform.request = None;
    store.record_step("w1", &transform, None).await.unwrap();
    // A call that started before the window is left out.
    let mut old = entry(orders[2].id, 1, None);
    old.request = Some(json!({"connector": "chat"}));
    old.started_at = now_ms() - chrono::Duration::hours(2);
    store.record_step("w1", &old, None).await.unwrap();

    // Two orders end (one succeeded, one dead); the third is rescheduled,
    // so its calls count while it waits in the queue; sync keeps running.
    store
        .finish("w1", first_claim(orders[0].id), &succeeded(json!({})))
        .await
        .unwrap();
    let dead = RunOutcome {
        status: RunStatus::Dead,
        output: None,
        error: Some("chat: 400".into()),
    };
    store
        .finish("w1", first_claim(orders[1].id), &dead)
        .await
        .unwrap();
    store
        .reschedule(
            "w1",
            first_claim(orders[2].id),
            Utc::now() + chrono::Duration::hours(1),
            "x",
        )
        .await
        .unwrap();

    let window = StatsWindow::ending_at(Utc::now(), HOUR, MINUTE);
    assert_eq!(window.buckets().len(), 60);
    let stats = store.stats(&window).await.unwrap();

    let started: u64 = stats
        .flows
        .iter()
        .filter(|b| b.flow == "orders")
        .map(|b| b.started)
        .sum();
    assert_eq!(started, 3, "{stats:?}");
    assert_eq!(
        stats
            .flows
            .iter()
            .filter(|b| b.flow == "sync")
            .map(|b| (b.started, b.succeeded + b.dead))
            .collect::<Vec<_>>(),
        vec![(1, 0)],
        "{stats:?}"
    );
    let ended: Vec<_> = stats
        .flows
        .iter()
        .filter(|b| b.flow == "orders" && b.p95_ms.is_some())
        .collect();
    assert_eq!(ended.iter().map(|b| b.succeeded).sum::<u64>(), 1);
    assert_eq!(ended.iter().map(|b| b.dead).sum::<u64>(), 1);
    for bucket in &stats.flows {
        assert!(window.buckets().contains(&bucket.start), "{bucket:?}");
    }

    // The runs may straddle a minute boundary; the calls were recorded with
    // one `started_at` each, so sum over buckets, and check the percentile
    // where all of crm's calls fell in one bucket.
    let crm: Vec<_> = stats
        .connectors
        .iter()
        .filter(|b| b.connector == "crm")
        .collect();
    assert_eq!(crm.iter().map(|b| b.calls).sum::<u64>(), 20, "{stats:?}");
    assert_eq!(crm.iter().map(|b| b.errors).sum::<u64>(), 2);
    if let [one] = crm.as_slice() {
        // Nearest rank: the 19th of 20 sorted values.
        assert_eq!(one.p95_ms, Some(19));
    }
    let chat: Vec<_> = stats
        .connectors
        .iter()
        .filter(|b| b.connector == "chat")
        .map(|b| (b.calls, b.errors))
        .collect();
    assert_eq!(chat, vec![(1, 0)], "{stats:?}");
    assert_eq!(stats.connectors.len(), crm.len() + 1);

    // A window that ended before any of this sees nothing.
    let earlier = StatsWindow::ending_at(Utc::now() - chrono::Duration::hours(3), HOUR, MINUTE);
    let stats = store.stats(&earlier).await.unwrap();
    assert!(
        stats.flows.is_empty() && stats.connectors.is_empty(),
        "{stats:?}"
    );
}

#[tokio::test]
async fn stats_show_each_flows_queue_and_its_cancelled_runs() {
    let (store, _dir) = open().await;
    let runs: Vec<_> = (0..4).map(|_| new_run("orders", None)).collect();
    store.enqueue(&runs).await.unwrap();
    // Two taken by a worker; one of them fails and is due again later.
    let claimed = store.claim("w1", 2, LONG).await.unwrap();
    assert_eq!(claimed.len(), 2);
    let later = Utc::now() + chrono::Duration::minutes(5);
    store
        .reschedule("w1", first_claim(claimed[0].id), later, "crm: 503")
        .await
        .unwrap();
    // One of the two still queued is cancelled.
    let queued: Vec<_> = runs
        .iter()
        .filter(|r| claimed.iter().all(|c| c.id != r.id))
        .collect();
    store.cancel(queued[0].id).await.unwrap();

    let stats = store.stats(&StatsWindow::last(HOUR, MINUTE)).await.unwrap();
    assert_eq!(stats.queues.len(), 1, "{:?}", stats.queues);
    let queue = &stats.queues[0];
    assert_eq!(queue.flow, "orders");
    assert_eq!(
        (queue.ready, queue.retrying, queue.waiting, queue.running),
        (1, 1, 0, 1)
    );
    assert_eq!(
        queue.next_retry_at.map(|t| t.timestamp_millis()),
        Some(later.timestamp_millis())
    );
    let cancelled: u64 = stats.flows.iter().map(|b| b.cancelled).sum();
    assert_eq!(cancelled, 1);
}

#[tokio::test]
async fn step_totals_count_one_flows_attempts_by_step_and_outcome() {
    let (store, _dir) = open().await;
    let a = new_run("orders", None);
    let b = new_run("orders", None);
    let other = new_run("sync", None);
    store
        .enqueue(&[a.clone(), b.clone(), other.clone()])
        .await
        .unwrap();
    assert_eq!(store.claim("w1", 3, LONG).await.unwrap().len(), 3);
    let since = Utc::now() - chrono::Duration::seconds(5);

    // orders: step-0 succeeded twice; step-1 failed once and succeeded
    // once; step-2 skipped once; a for_each item is not counted apart.
    for run in [&a, &b] {
        store
            .record_step("w1", &entry(run.id, 0, None), None)
            .await
            .unwrap();
    }
    let mut failed = entry(a.id, 1, None);
    failed.status = StepStatus::Failed;
    failed.error = Some("crm: 503".into());
    store.record_step("w1", &failed, None).await.unwrap();
    store
        .record_step("w1", &entry(b.id, 1, None), None)
        .await
        .unwrap();
    store
        .record_step("w1", &entry(b.id, 1, Some(0)), None)
        .await
        .unwrap();
    let mut skipped = entry(b.id, 2, None);
    skipped.status = StepStatus::Skipped;
    store.record_step("w1", &skipped, None).await.unwrap();
    // Another flow's steps are not counted.
    store
        .record_step("w1", &entry(other.id, 0, None), None)
        .await
        .unwrap();
    // A run that ended counts too.
    store
        .finish("w1", first_claim(b.id), &succeeded(json!(1)))
        .await
        .unwrap();

    let totals: Vec<(String, u64, u64, u64)> = store
        .step_totals("orders", since)
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.step, t.succeeded, t.failed, t.skipped))
        .collect();
    assert_eq!(
        totals,
        vec![
            ("step-0".to_string(), 2, 0, 0),
            ("step-1".to_string(), 1, 1, 0),
            ("step-2".to_string(), 0, 0, 1),
        ]
    );
    // Nothing since a later instant.
    let later = Utc::now() + chrono::Duration::seconds(5);
    assert!(store.step_totals("orders", later).await.unwrap().is_empty());
    assert!(store.step_totals("nobody", since).await.unwrap().is_empty());
}

#[test]
fn windows_are_aligned_and_end_with_the_current_bucket() {
    let now = chrono::DateTime::from_timestamp_millis(1_760_000_123_456).unwrap();
    let window = StatsWindow::ending_at(now, HOUR, MINUTE);
    assert_eq!(window.since.timestamp_millis() % 60_000, 0);
    assert_eq!(window.until.timestamp_millis() % 60_000, 0);
    assert!(window.since < now && now < window.until);
    assert_eq!(window.until - window.since, chrono::Duration::hours(1));
    let buckets = window.buckets();
    assert_eq!(buckets.len(), 60);
    assert_eq!(buckets[0], window.since);
    assert!(*buckets.last().unwrap() <= now);
}
