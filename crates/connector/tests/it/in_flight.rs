//! `max_in_flight`: attempts beyond the limit wait for a call in flight to
//! end, so the upstream never sees more at once; without it, it does.

use std::sync::Arc;
use std::time::Duration;

use patchbay_connector::{Connector, RetryPolicy};
use patchbay_testkit::{MockUpstream, Reply};
use serde_json::json;

use crate::support::{build, request};

const CALLS: usize = 12;

/// An upstream that takes 100 ms to answer.
async fn slow_upstream() -> MockUpstream {
    let mock = MockUpstream::start().await;
    mock.route(
        "GET",
        "/items",
        Reply::json(200, json!({ "ok": true })).with_delay(Duration::from_millis(100)),
    );
    mock
}

/// Sends [`CALLS`] calls at once; the time each waited for its turn.
async fn call_together(connector: Connector) -> Vec<Duration> {
    let connector = Arc::new(connector);
    let calls: Vec<_> = (0..CALLS)
        .map(|_| {
            let connector = Arc::clone(&connector);
            tokio::spawn(async move {
                let delivered = connector
                    .send(&request("GET", "/items"), RetryPolicy::default())
                    .await
                    .expect("every call is answered");
                assert_eq!(delivered.response.status, 200);
                delivered.waited
            })
        })
        .collect();
    let mut waited = Vec::new();
    for call in calls {
        waited.push(call.await.unwrap());
    }
    waited
}

#[tokio::test]
async fn calls_beyond_max_in_flight_wait_for_a_slot() {
    let mock = slow_upstream().await;
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}\nmax_in_flight: 3\n",
        mock.url()
    ));

    let waited = call_together(connector).await;

    assert_eq!(
        mock.max_in_flight(),
        3,
        "the upstream saw at most 3 at once"
    );
    assert_eq!(mock.requests().len(), CALLS);
    // Three waves waited behind the first: at least 100 ms each time.
    let waiting = waited
        .iter()
        .filter(|w| **w >= Duration::from_millis(90))
        .count();
    assert_eq!(waiting, CALLS - 3, "{waited:?}");
}

#[tokio::test]
async fn without_max_in_flight_the_calls_go_out_together() {
    let mock = slow_upstream().await;
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}\n",
        mock.url()
    ));

    let waited = call_together(connector).await;

    assert!(mock.max_in_flight() > 3, "{}", mock.max_in_flight());
    assert!(
        waited.iter().all(|w| *w < Duration::from_millis(10)),
        "{waited:?}"
    );
}
