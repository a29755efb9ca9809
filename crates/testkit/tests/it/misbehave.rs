//! Misbehaving upstreams: connection resets, latency, 429s, an enforced rate
//! limit, the idempotency store, malformed and huge bodies.

use std::time::{Duration, Instant};

use patchbay_testkit::{MockUpstream, Reply};
use serde_json::{Value, json};

use crate::client;

#[tokio::test]
async fn a_reset_reply_sends_no_response_at_all() {
    let mock = MockUpstream::start().await;
    mock.route("GET", "/crash", Reply::reset());
    mock.route("GET", "/fine", Reply::json(200, json!({ "ok": true })));
    let http = client();
    let error = http
        .get(format!("{}/crash", mock.url()))
        .send()
        .await
        .expect_err("a reset connection has no response");
    assert!(error.status().is_none(), "{error:?}");
    assert!(error.is_request() || error.is_connect(), "{error:?}");
    assert_eq!(
        mock.request_count(),
        1,
        "the request arrived before the reset"
    );
    // The mock itself carries on.
    let fine = http
        .get(format!("{}/fine", mock.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(fine.status(), 200);
}

#[tokio::test]
async fn latency_delays_every_reply() {
    let mock = MockUpstream::start().await;
    mock.route("GET", "/slow", Reply::status(204));
    mock.route(
        "GET",
        "/slower",
        Reply::status(204).with_delay(Duration::from_millis(100)),
    );
    mock.set_latency(Duration::from_millis(150));
    let http = client();
    let started = Instant::now();
    http.get(format!("{}/slow", mock.url()))
        .send()
        .await
        .unwrap();
    let slow = started.elapsed();
    assert!(slow >= Duration::from_millis(150), "{slow:?}");
    let started = Instant::now();
    http.get(format!("{}/slower", mock.url()))
        .send()
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(250));
    mock.set_latency(Duration::ZERO);
    let started = Instant::now();
    http.get(format!("{}/slow", mock.url()))
        .send()
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_millis(150));
}

#[tokio::test]
async fn too_many_requests_carries_retry_after() {
    let mock = MockUpstream::start().await;
    mock.route(
        "GET",
        "/items",
        Reply::too_many_requests(Duration::from_secs(3)),
    );
    let response = client()
        .get(format!("{}/items", mock.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "3");
}

#[tokio::test]
async fn an_enforced_rate_limit_rejects_what_comes_too_early() {
    let mock = MockUpstream::start().await;
    mock.route(
        "GET",
        "/items",
        Reply::json(200, json!({ "default": true })),
    );
    mock.script(
        "GET",
        "/items",
        [Reply::json(200, json!({ "scripted": true }))],
    );
    mock.enforce_rate_limit(5, Duration::from_secs(1));
    let http = client();
    let url = format!("{}/items", mock.url());
    let first = http.get(&url).send().await.unwrap();
    assert_eq!(
        first.json::<Value>().await.unwrap(),
        json!({ "scripted": true })
    );
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let response = http.get(&url).send().await.unwrap();
        if response.status() == 429 {
            assert_eq!(response.headers()["retry-after"], "1");
        }
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [429, 429, 429]);
    assert_eq!(mock.rejected(), 3);
    assert_eq!(mock.request_count(), 4, "rejected requests still arrive");

    // The next slot is 200ms after the first request; rejections did not
    // use it up.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let later = http.get(&url).send().await.unwrap();
    assert_eq!(later.status(), 200);
    assert_eq!(
        later.json::<Value>().await.unwrap(),
        json!({ "default": true })
    );
    assert_eq!(mock.rejected(), 3);
}

#[tokio::test]
async fn a_burst_is_tolerated_when_asked_for() {
    let mock = MockUpstream::start().await;
    mock.route("GET", "/items", Reply::status(204));
    mock.enforce_rate_limit_with_burst(1, Duration::from_secs(60), 3);
    let http = client();
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let response = http
            .get(format!("{}/items", mock.url()))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [204, 204, 204, 429]);
    assert_eq!(mock.rejected(), 1);
}

#[tokio::test]
async fn the_idempotency_store_applies_each_key_once() {
    let mock = MockUpstream::start().await;
    let created = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&created);
    mock.route_fn("POST", "/charges", move |_| {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        Reply::json(201, json!({ "id": format!("ch_{n}") }))
    });
    mock.idempotent("POST", "/charges");
    let http = client();
    let url = format!("{}/charges", mock.url());
    let post = |key: Option<&str>, body: Value| {
        let mut request = http.post(&url).json(&body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        async move {
            let response = request.send().await.unwrap();
            let replayed = response.headers().contains_key("idempotent-replayed");
            let status = response.status().as_u16();
            (status, replayed, response.json::<Value>().await.unwrap())
        }
    };
    let amount = json!({ "amount": 100 });
    assert_eq!(
        post(Some("k1"), amount.clone()).await,
        (201, false, json!({ "id": "ch_1" }))
    );
    assert_eq!(
        post(Some("k1"), amount.clone()).await,
        (201, true, json!({ "id": "ch_1" }))
    );
    assert_eq!(
        post(Some("k2"), amount.clone()).await,
        (201, false, json!({ "id": "ch_2" }))
    );
    let (status, _, _) = post(Some("k1"), json!({ "amount": 999 })).await;
    assert_eq!(status, 422, "a key reused for another body is refused");
    post(None, amount.clone()).await;
    post(None, amount.clone()).await;

    assert_eq!(mock.side_effects("k1"), 1);
    assert_eq!(mock.side_effects("k2"), 1);
    assert_eq!(mock.side_effects("k3"), 0);
    assert_eq!(mock.side_effects_total(), 4);
    assert_eq!(mock.replays(), 1);
    assert_eq!(created.load(std::sync::atomic::Ordering::SeqCst), 4);
}

#[tokio::test]
async fn a_failed_attempt_leaves_the_key_free() {
    let mock = MockUpstream::start().await;
    mock.route(
        "POST",
        "/charges",
        Reply::json(201, json!({ "id": "ch_1" })),
    );
    mock.script("POST", "/charges", [Reply::status(503), Reply::reset()]);
    mock.idempotent("POST", "/charges");
    let http = client();
    let send = || {
        http.post(format!("{}/charges", mock.url()))
            .header("Idempotency-Key", "k1")
            .json(&json!({}))
            .send()
    };
    assert_eq!(send().await.unwrap().status(), 503);
    assert!(send().await.is_err(), "the reset leaves no response");
    assert_eq!(mock.side_effects("k1"), 0, "neither applied anything");
    assert_eq!(send().await.unwrap().status(), 201);
    let replay = send().await.unwrap();
    assert_eq!(replay.status(), 201);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(mock.side_effects("k1"), 1);
}

#[tokio::test]
async fn malformed_and_huge_bodies() {
    let mock = MockUpstream::start().await;
    mock.route("GET", "/broken", Reply::malformed_json(200));
    mock.route("GET", "/huge", Reply::huge_json(200, 20 * 1024 * 1024));
    let http = client();
    let broken = http
        .get(format!("{}/broken", mock.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(broken.headers()["content-type"], "application/json");
    assert!(broken.json::<Value>().await.is_err());
    let huge = http
        .get(format!("{}/huge", mock.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(huge.content_length(), Some(20 * 1024 * 1024));
    let body: Value = huge.json().await.unwrap();
    assert_eq!(
        body["data"].as_str().map(str::len),
        Some(20 * 1024 * 1024 - 11)
    );
}
