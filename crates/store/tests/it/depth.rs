//! The queue depth behind the queue metrics: ready, delayed and running
//! runs, and the due time of the oldest ready one.

use chrono::Utc;
use patchbay_store::QueueDepth;

use crate::{LONG, first_claim, new_run, now_ms, open};

#[tokio::test]
async fn counts_ready_delayed_and_running_runs() {
    let (store, _dir) = open().await;
    assert_eq!(store.queue_depth().await.unwrap(), QueueDepth::default());

    let before = now_ms();
    for _ in 0..4 {
        store.enqueue(&[new_run("orders", None)]).await.unwrap();
    }
    let depth = store.queue_depth().await.unwrap();
    assert_eq!((depth.ready, depth.delayed, depth.running), (4, 0, 0));
    let oldest = depth.oldest_ready_since.expect("a ready run");
    assert!(oldest >= before && oldest <= Utc::now(), "{oldest}");

    // One claimed and rescheduled an hour out, one claimed and running.
    let claimed = store.claim("w1", 2, LONG).await.unwrap();
    let later = Utc::now() + chrono::Duration::hours(1);
    store
        .reschedule("w1", first_claim(claimed[0].id), later, "503")
        .await
        .unwrap();
    let depth = store.queue_depth().await.unwrap();
    assert_eq!((depth.ready, depth.delayed, depth.running), (2, 1, 1));

    // Nothing ready: no oldest.
    store.claim("w1", 10, LONG).await.unwrap();
    let depth = store.queue_depth().await.unwrap();
    assert_eq!((depth.ready, depth.delayed, depth.running), (0, 1, 3));
    assert_eq!(depth.oldest_ready_since, None);
}
