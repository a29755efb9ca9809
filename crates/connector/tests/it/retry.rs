//! Retries: transient failures are retried with backoff, `Retry-After` is
//! honoured, and non-idempotent calls are repeated only with a key.
//!
//! Tests that wait run on paused time ([`step_paused_time`]): a backoff or a
//! `Retry-After` passes at once, and is measured exactly.

use std::time::Duration;

use patchbay_connector::{CallClass, CallRequest, RetryPolicy};
use patchbay_testkit::{MockUpstream, Reply};
use serde_json::json;
use tokio::time::Instant;

use crate::support::{build, request, step_paused_time};

fn fast(attempts: u32) -> RetryPolicy {
    RetryPolicy {
        attempts,
        min: Duration::from_millis(20),
        max: Duration::from_secs(5),
    }
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_until_success() {
    step_paused_time();
    let mock = MockUpstream::start().await;
    mock.route("GET", "/items", Reply::json(200, json!({ "ok": true })));
    mock.script("GET", "/items", [Reply::status(503), Reply::status(503)]);
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}\n",
        mock.url()
    ));
    let done = connector
        .send(&request("GET", "/items"), fast(3))
        .await
        .unwrap();
    assert_eq!(done.attempts, 3);
    assert_eq!(done.response.body, json!({ "ok": true }));
    assert_eq!(mock.request_count(), 3);
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_waited_for() {
    step_paused_time();
    let mock = MockUpstream::start().await;
    mock.route("GET", "/items", Reply::json(200, json!({})));
    mock.script(
        "GET",
        "/items",
        [Reply::status(429).with_header("Retry-After", "2")],
    );
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}\n",
        mock.url()
    ));
    let started = Instant::now();
    let done = connector
        .send(&request("GET", "/items"), fast(3))
        .await
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(done.attempts, 2);
    assert!(
        waited >= Duration::from_secs(2),
        "retried after {waited:?}, before Retry-After"
    );
    assert!(waited < Duration::from_secs(4), "waited {waited:?}");
    let requests = mock.requests();
    let gap = requests[1].received_at - requests[0].received_at;
    assert!(gap >= Duration::from_secs(2), "{gap:?}");
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_capped_by_the_backoff_maximum() {
    step_paused_time();
    let mock = MockUpstream::start().await;
    mock.route("GET", "/items", Reply::json(200, json!({})));
    mock.script(
        "GET",
        "/items",
        [Reply::status(503).with_header("Retry-After", "3600")],
    );
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}\n",
        mock.url()
    ));
    let policy = RetryPolicy {
        max: Duration::from_millis(100),
        ..fast(2)
    };
    let started = Instant::now();
    connector
        .send(&request("GET", "/items"), policy)
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn exhausted_attempts_return_the_last_error() {
    step_paused_time();
    let mock = MockUpstream::start().await;
    mock.route("GET", "/items", Reply::status(502));
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}\n",
        mock.url()
    ));
    let failed = connector
        .send(&request("GET", "/items"), fast(4))
        .await
        .unwrap_err();
    assert_eq!(failed.attempts, 4);
    assert_eq!(failed.error.class(), CallClass::ServerError);
    assert_eq!(mock.request_count(), 4);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let mock = MockUpstream::start().await;
    mock.route("GET", "/items", Reply::status(404));
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}\n",
        mock.url()
    ));
    let failed = connector
        .send(&request("GET", "/items"), fast(5))
        .await
        .unwrap_err();
    assert_eq!(failed.attempts, 1);
    assert_eq!(mock.request_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn post_is_retried_only_with_an_idempotency_key_and_keeps_it() {
    step_paused_time();
    let mock = MockUpstream::start().await;
    mock.route("POST", "/charges", Reply::status(503));
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}\n",
        mock.url()
    ));

    let without_key = connector
        .send(&request("POST", "/charges"), fast(3))
        .await
        .unwrap_err();
    assert_eq!(
        without_key.attempts, 1,
        "a POST without a key must not be repeated"
    );

    let with_key = CallRequest {
        idempotency_key: Some("run-1:charge".into()),
        ..request("POST", "/charges")
    };
    let failed = connector.send(&with_key, fast(3)).await.unwrap_err();
    assert_eq!(failed.attempts, 3);
    let keys: Vec<_> = mock
        .requests()
        .iter()
        .skip(1)
        .map(|r| r.header("idempotency-key").map(str::to_string))
        .collect();
    assert_eq!(keys, vec![Some("run-1:charge".to_string()); 3]);
}

#[tokio::test]
async fn the_idempotency_header_is_configurable_or_off() {
    let mock = MockUpstream::start().await;
    mock.route("POST", "/charges", Reply::json(200, json!({})));
    let keyed = CallRequest {
        idempotency_key: Some("k1".into()),
        ..request("POST", "/charges")
    };
    let custom = build(&format!(
        "dangerous_allow_private: true\nurl: {}\nidempotency_header: X-Request-Id\n",
        mock.url()
    ));
    custom.send(&keyed, fast(1)).await.unwrap();
    let off = build(&format!(
        "dangerous_allow_private: true\nurl: {}\nidempotency_header: \"\"\n",
        mock.url()
    ));
    off.send(&keyed, fast(1)).await.unwrap();
    let requests = mock.requests();
    assert_eq!(requests[0].header("x-request-id"), Some("k1"));
    assert_eq!(requests[0].header("idempotency-key"), None);
    assert_eq!(requests[1].header("idempotency-key"), None);
    assert!(!off.sends_idempotency_keys());
}
