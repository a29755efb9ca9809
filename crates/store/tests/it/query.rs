//! Listing and counting runs.

use patchbay_store::{RunFilter, RunId, RunOutcome, RunStatus, StatusCount};
use serde_json::json;

use crate::{LONG, first_claim, new_run, open, succeeded};

fn ids(runs: &[patchbay_store::Run]) -> Vec<RunId> {
    runs.iter().map(|r| r.id).collect()
}

#[tokio::test]
async fn list_is_newest_first_and_filters() {
    let (store, _dir) = open().await;
    // Interleaved flows (ids are time-ordered, so creation order is list
    // order) give each filter something to skip.
    let mut all = Vec::new();
    let (mut orders, mut crm) = (Vec::new(), Vec::new());
    for i in 0..4 {
        let run = new_run("orders", None);
        orders.push(run.clone());
        all.push(run);
        if i < 3 {
            let run = new_run("crm", None);
            crm.push(run.clone());
            all.push(run);
        }
    }
    store.enqueue(&all).await.unwrap();
    store.claim("w1", 2, LONG).await.unwrap(); // the two oldest: orders[0], crm[0]
    store
        .finish("w1", first_claim(orders[0].id), &succeeded(json!(1)))
        .await
        .unwrap();

    let newest_first: Vec<_> = all.iter().rev().map(|r| r.id).collect();
    let listed = store.list_runs(&RunFilter::default()).await.unwrap();
    assert_eq!(ids(&listed), newest_first);

    let flow = RunFilter {
        flow: Some("orders".to_owned()),
        ..RunFilter::default()
    };
    let listed = store.list_runs(&flow).await.unwrap();
    assert_eq!(
        ids(&listed),
        orders.iter().rev().map(|r| r.id).collect::<Vec<_>>()
    );

    let queued = RunFilter {
        status: Some(RunStatus::Queued),
        ..RunFilter::default()
    };
    let listed = store.list_runs(&queued).await.unwrap();
    assert_eq!(listed.len(), 5);
    assert!(listed.iter().all(|r| r.status == RunStatus::Queued));

    let both = RunFilter {
        flow: Some("crm".to_owned()),
        status: Some(RunStatus::Running),
        ..RunFilter::default()
    };
    assert_eq!(ids(&store.list_runs(&both).await.unwrap()), vec![crm[0].id]);

    // Paging: pages of 3 following `before` cover everything once, in order.
    let mut paged = Vec::new();
    let mut before = None;
    loop {
        let page = RunFilter {
            before,
            limit: 3,
            ..RunFilter::default()
        };
        let runs = store.list_runs(&page).await.unwrap();
        assert!(runs.len() <= 3);
        let Some(last) = runs.last() else { break };
        before = Some(last.id);
        paged.extend(ids(&runs));
    }
    assert_eq!(paged, newest_first);

    let all_filters = RunFilter {
        flow: Some("orders".to_owned()),
        status: Some(RunStatus::Queued),
        before: Some(orders[3].id),
        limit: 1,
        ..RunFilter::default()
    };
    assert_eq!(
        ids(&store.list_runs(&all_filters).await.unwrap()),
        vec![orders[2].id]
    );
}

#[tokio::test]
async fn list_limit_defaults_to_50_and_is_capped_at_1000() {
    let (store, _dir) = open().await;
    let runs: Vec<_> = (0..1005).map(|_| new_run("bulk", None)).collect();
    store.enqueue(&runs).await.unwrap();

    let default = store.list_runs(&RunFilter::default()).await.unwrap();
    assert_eq!(default.len(), 50);
    let huge = RunFilter {
        limit: u32::MAX,
        ..RunFilter::default()
    };
    assert_eq!(store.list_runs(&huge).await.unwrap().len(), 1000);
    let small = RunFilter {
        limit: 7,
        ..RunFilter::default()
    };
    assert_eq!(store.list_runs(&small).await.unwrap().len(), 7);
}

#[tokio::test]
async fn counts_by_flow_and_status() {
    let (store, _dir) = open().await;
    assert!(store.count_runs().await.unwrap().is_empty());
    let orders: Vec<_> = (0..3).map(|_| new_run("orders", None)).collect();
    store.enqueue(&orders).await.unwrap();
    store.enqueue(&[new_run("crm", None)]).await.unwrap();
    store.claim("w1", 2, LONG).await.unwrap();
    let skipped = RunOutcome {
        status: RunStatus::Skipped,
        output: None,
        error: None,
    };
    store
        .finish("w1", first_claim(orders[0].id), &skipped)
        .await
        .unwrap();

    let counts = store.count_runs().await.unwrap();

    let count = |flow: &str, status, count| StatusCount {
        flow: flow.to_owned(),
        status,
        count,
    };
    assert_eq!(
        counts,
        vec![
            count("crm", RunStatus::Queued, 1),
            count("orders", RunStatus::Queued, 1),
            count("orders", RunStatus::Running, 1),
            count("orders", RunStatus::Skipped, 1),
        ]
    );
    assert!(store.run(RunId::now_v7()).await.unwrap().is_none());
}
