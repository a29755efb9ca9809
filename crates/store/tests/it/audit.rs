//! The audit log: entries written ahead and completed, listed newest first
//! in pages, and purged by age.

use chrono::{Duration, Utc};
use patchbay_store::{AuditEntry, AuditFilter, AuditId};

use crate::{now_ms, open};

fn entry(id: AuditId, route: &str, status: Option<u16>) -> AuditEntry {
    AuditEntry {
        id,
        at: now_ms(),
        actor: "ops".into(),
        method: "POST".into(),
        route: route.into(),
        target: Some("contacts".into()),
        status,
        peer: Some("127.0.0.1:40000".into()),
    }
}

#[tokio::test]
async fn an_entry_written_ahead_is_completed_with_its_status_only() {
    let (store, keep) = open().await;
    let id = AuditId::now_v7();
    let ahead = entry(id, "/api/v1/config/reload", None);
    store
        .record_audit(std::slice::from_ref(&ahead))
        .await
        .unwrap();
    let listed = store.list_audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(listed, vec![ahead.clone()]);

    // The second write completes it; who and what cannot be rewritten.
    let mut done = entry(id, "/api/v1/secrets/{name}", Some(200));
    done.actor = "someone-else".into();
    store.record_audit(&[done]).await.unwrap();
    let listed = store.list_audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(
        listed,
        vec![AuditEntry {
            status: Some(200),
            ..ahead.clone()
        }]
    );

    // Durable: the store opened again sees it.
    drop(store);
    let again = keep.reopen().await;
    let listed = again.list_audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(listed[0].status, Some(200));
    assert_eq!(listed[0].actor, "ops");
}

#[tokio::test]
async fn entries_list_newest_first_in_pages() {
    let (store, _dir) = open().await;
    let ids: Vec<AuditId> = (0..5).map(|_| AuditId::now_v7()).collect();
    let entries: Vec<AuditEntry> = ids
        .iter()
        .map(|id| entry(*id, "/api/v1/runs/{id}/replay", Some(200)))
        .collect();
    store.record_audit(&entries).await.unwrap();

    let first = store
        .list_audit(&AuditFilter {
            before: None,
            limit: 2,
        })
        .await
        .unwrap();
    assert_eq!(
        first.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![ids[4], ids[3]]
    );
    let rest = store
        .list_audit(&AuditFilter {
            before: Some(ids[3]),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(
        rest.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![ids[2], ids[1], ids[0]]
    );
}

#[tokio::test]
async fn old_entries_are_purged_in_bounded_batches() {
    let (store, _dir) = open().await;
    let old: Vec<AuditEntry> = (0..3)
        .map(|_| entry(AuditId::now_v7(), "/api/v1/config/reload", Some(200)))
        .collect();
    store.record_audit(&old).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let cutoff = Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let fresh = entry(AuditId::now_v7(), "/api/v1/config/reload", Some(200));
    store
        .record_audit(std::slice::from_ref(&fresh))
        .await
        .unwrap();

    assert_eq!(store.purge_audit(cutoff, 2).await.unwrap(), 2, "bounded");
    assert_eq!(store.purge_audit(cutoff, 100).await.unwrap(), 1);
    assert_eq!(store.purge_audit(cutoff, 100).await.unwrap(), 0);
    let left = store.list_audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(left, vec![fresh]);
    let long_ago = Utc::now() - Duration::days(1);
    assert_eq!(store.purge_audit(long_ago, 100).await.unwrap(), 0);
}
