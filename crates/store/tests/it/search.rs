//! Searching runs: by creation time and by text in their error.

use std::time::Duration;

use chrono::Utc;
use patchbay_store::{RunFilter, RunId, RunStatus};

use crate::{LONG, first_claim, new_run, open};

fn ids(runs: &[patchbay_store::Run]) -> Vec<RunId> {
    runs.iter().map(|r| r.id).collect()
}

#[tokio::test]
async fn since_and_until_bound_the_creation_time() {
    let (store, _dir) = open().await;
    let early = new_run("orders", None);
    store.enqueue(std::slice::from_ref(&early)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let middle_time = Utc::now();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let middle = new_run("orders", None);
    store.enqueue(std::slice::from_ref(&middle)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let late_time = Utc::now();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let late = new_run("orders", None);
    store.enqueue(std::slice::from_ref(&late)).await.unwrap();

    let since = RunFilter {
        since: Some(middle_time),
        ..RunFilter::default()
    };
    assert_eq!(
        ids(&store.list_runs(&since).await.unwrap()),
        vec![late.id, middle.id]
    );
    let until = RunFilter {
        until: Some(late_time),
        ..RunFilter::default()
    };
    assert_eq!(
        ids(&store.list_runs(&until).await.unwrap()),
        vec![middle.id, early.id]
    );
    let both = RunFilter {
        since: Some(middle_time),
        until: Some(late_time),
        ..RunFilter::default()
    };
    assert_eq!(ids(&store.list_runs(&both).await.unwrap()), vec![middle.id]);
    let empty = RunFilter {
        since: Some(late_time),
        until: Some(middle_time),
        ..RunFilter::default()
    };
    assert!(store.list_runs(&empty).await.unwrap().is_empty());
    // A run created in the very millisecond of `since` is included, in that
    // of `until` excluded.
    let (secs, nanos) = middle.id.get_timestamp().unwrap().to_unix();
    let at = chrono::DateTime::from_timestamp(i64::try_from(secs).unwrap(), nanos).unwrap();
    let exact = RunFilter {
        since: Some(at),
        until: Some(at + chrono::Duration::milliseconds(1)),
        ..RunFilter::default()
    };
    assert_eq!(
        ids(&store.list_runs(&exact).await.unwrap()),
        vec![middle.id]
    );
}

#[tokio::test]
async fn error_text_is_found_without_regard_to_case_with_other_filters() {
    let (store, _dir) = open().await;
    let runs: Vec<_> = (0..3).map(|_| new_run("orders", None)).collect();
    let other = new_run("crm", None);
    store.enqueue(&runs).await.unwrap();
    store.enqueue(std::slice::from_ref(&other)).await.unwrap();
    store.claim("w1", 4, LONG).await.unwrap();
    let errors = [
        "payments: HTTP 503",
        "chat: timed out",
        "payments: 100% of 50_ used",
    ];
    for (run, error) in runs.iter().zip(errors) {
        store
            .reschedule("w1", first_claim(run.id), Utc::now(), error)
            .await
            .unwrap();
    }
    store
        .reschedule("w1", first_claim(other.id), Utc::now(), "PAYMENTS: 503")
        .await
        .unwrap();

    let search = |text: &str, flow: Option<&str>| RunFilter {
        error_contains: Some(text.into()),
        flow: flow.map(str::to_owned),
        status: Some(RunStatus::Queued),
        ..RunFilter::default()
    };
    let found = store.list_runs(&search("Payments", None)).await.unwrap();
    assert_eq!(ids(&found), vec![other.id, runs[2].id, runs[0].id]);
    let found = store
        .list_runs(&search("payments", Some("orders")))
        .await
        .unwrap();
    assert_eq!(ids(&found), vec![runs[2].id, runs[0].id]);
    // `%` and `_` are plain text, not patterns.
    let found = store.list_runs(&search("100%", None)).await.unwrap();
    assert_eq!(ids(&found), vec![runs[2].id]);
    let found = store.list_runs(&search("0_ u", None)).await.unwrap();
    assert_eq!(ids(&found), vec![runs[2].id]);
    assert!(
        store
            .list_runs(&search("%", Some("crm")))
            .await
            .unwrap()
            .is_empty()
    );
}
