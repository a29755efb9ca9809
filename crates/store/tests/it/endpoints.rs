//! Webhook endpoint records: a failing spell starts at the first failure,
//! ends at a success, and disables the endpoint once it has lasted
//! `disable_after`; enabling forgets the spell.

use std::time::Duration;

use chrono::TimeDelta;
use patchbay_store::DeliveryAttempt;

use crate::{now_ms, open};

const DAY: Duration = Duration::from_secs(86_400);

fn attempt(at_hours: i64, delivered: bool) -> DeliveryAttempt {
    DeliveryAttempt {
        endpoint: "customer_hooks".into(),
        at: now_ms() + TimeDelta::hours(at_hours),
        delivered,
        status: Some(if delivered { 204 } else { 503 }),
        error: (!delivered).then(|| "503 Service Unavailable".into()),
        disable_after: DAY,
    }
}

#[tokio::test]
async fn an_endpoint_failing_for_its_whole_period_is_disabled_and_can_be_enabled_again() {
    let (store, _dir) = open().await;
    assert_eq!(store.endpoint("customer_hooks").await.unwrap(), None);

    let first = attempt(0, false);
    let record = store.record_delivery(&first).await.unwrap();
    assert_eq!(record.failing_since, Some(first.at));
    assert_eq!((record.delivered, record.failed), (0, 1));
    assert!(!record.is_disabled());

    // A success ends the spell; the next failure starts a new one.
    let record = store.record_delivery(&attempt(10, true)).await.unwrap();
    assert_eq!(record.failing_since, None);
    assert_eq!(record.last_status, Some(204));
    assert_eq!(record.last_error, None);
    let restart = attempt(20, false);
    store.record_delivery(&restart).await.unwrap();

    // Still within a day of the spell's start: enabled.
    let record = store.record_delivery(&attempt(43, false)).await.unwrap();
    assert_eq!(record.failing_since, Some(restart.at));
    assert!(!record.is_disabled(), "23 h of failures is short of a day");

    let last = attempt(44, false);
    let record = store.record_delivery(&last).await.unwrap();
    assert_eq!(record.disabled_at, Some(last.at));
    assert_eq!((record.delivered, record.failed), (1, 4));
    assert_eq!(
        record.last_error.as_deref(),
        Some("503 Service Unavailable")
    );

    // Later attempts (already under way when it was disabled) keep the
    // first disabling time.
    let record = store.record_delivery(&attempt(45, false)).await.unwrap();
    assert_eq!(record.disabled_at, Some(last.at));
    assert_eq!(store.endpoints().await.unwrap(), vec![record]);

    assert!(store.enable_endpoint("customer_hooks").await.unwrap());
    let record = store.endpoint("customer_hooks").await.unwrap().unwrap();
    assert_eq!((record.disabled_at, record.failing_since), (None, None));
    assert!(!store.enable_endpoint("nobody").await.unwrap());
}
