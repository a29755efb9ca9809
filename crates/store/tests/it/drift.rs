//! Contract drift records: one per kind, counted across batches, the
//! first sighting and example kept.

use chrono::Duration;
use patchbay_store::{DriftKind, DriftObservation};

use crate::{now_ms, open};

fn seen(pointer: &str, count: u64, example: &str, minutes_ago: i64) -> DriftObservation {
    let at = now_ms() - Duration::minutes(minutes_ago);
    DriftObservation {
        kind: DriftKind {
            connector: "crm".into(),
            operation: "GET /contacts".into(),
            response: "200".into(),
            pointer: pointer.into(),
            expected: "type string".into(),
        },
        seen: "integer".into(),
        first_seen: at,
        last_seen: at,
        count,
        example: example.into(),
    }
}

#[tokio::test]
async fn drift_is_one_record_per_kind_counted_across_batches() {
    let (store, _dir) = open().await;
    let first = seen("/contacts/-/email", 3, "42", 10);
    let other = seen("/next", 1, "7", 9);
    assert_eq!(
        store.record_drift(&[first.clone(), other]).await.unwrap(),
        [true, true]
    );
    let later = seen("/contacts/-/email", 2, "43", 1);
    assert_eq!(
        store
            .record_drift(std::slice::from_ref(&later))
            .await
            .unwrap(),
        [false]
    );

    let records = store.list_drift().await.unwrap();
    assert_eq!(records.len(), 2);
    let email = &records[0];
    assert_eq!(email.kind.pointer, "/contacts/-/email");
    assert_eq!(email.count, 5);
    assert_eq!(email.first_seen, first.first_seen);
    assert_eq!(email.last_seen, later.last_seen);
    assert_eq!(email.example, "42", "the first example stays");
    assert_eq!(records[1].kind.pointer, "/next");
    assert_eq!(records[1].count, 1);
}
