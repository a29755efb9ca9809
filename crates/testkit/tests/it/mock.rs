//! `MockUpstream`: routing, scripts, recording, hold/release, in-flight tracking.

use std::time::{Duration, Instant};

use patchbay_testkit::{MockUpstream, Reply};
use serde_json::{Value, json};

use crate::{WAIT, client, eventually};

#[tokio::test]
async fn scripted_replies_come_first_then_the_default() {
    let mock = MockUpstream::start().await;
    mock.route(
        "POST",
        "/v1/charges",
        Reply::json(201, json!({"id": "ch_1"})),
    );
    mock.script(
        "POST",
        "/v1/charges",
        [
            Reply::status(503).with_header("retry-after", "1"),
            Reply::json(429, json!({"error": "slow_down"})),
        ],
    );
    let http = client();
    let url = format!("{}/v1/charges", mock.url());
    let mut seen = Vec::new();
    for _ in 0..4 {
        let response = http.post(&url).json(&json!({"n": 1})).send().await.unwrap();
        seen.push(response.status().as_u16());
        if response.status() == 503 {
            assert_eq!(response.headers()["retry-after"], "1");
            assert_eq!(response.content_length(), Some(0));
        }
        if response.status() == 201 {
            assert_eq!(response.headers()["content-type"], "application/json");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body, json!({"id": "ch_1"}));
        }
    }
    assert_eq!(seen, [503, 429, 201, 201]);
    assert_eq!(mock.request_count(), 4);
    let seqs: Vec<_> = mock.requests().iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [0, 1, 2, 3]);
}

#[tokio::test]
async fn scripts_without_default_end_in_404() {
    let mock = MockUpstream::start().await;
    mock.script("GET", "/flaky", [Reply::status(500)]);
    let http = client();
    let url = format!("{}/flaky", mock.url());
    assert_eq!(http.get(&url).send().await.unwrap().status(), 500);
    assert_eq!(http.get(&url).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn route_params_query_headers_and_body_are_recorded() {
    let mock = MockUpstream::start().await;
    mock.route_fn("PUT", "/customers/{id}", |req| {
        let mut body = req.json.clone().unwrap_or_default();
        body["id"] = json!(req.param("id"));
        Reply::json(200, body)
    });
    let response = client()
        .put(format!("{}/customers/c%2042?x=1&y=a%20b&x=2", mock.url()))
        .header("X-Trace", "abc")
        .json(&json!({"name": "Ada"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"name": "Ada", "id": "c 42"}));

    let recorded = mock.requests_to("PUT", "/customers/{id}");
    assert_eq!(recorded.len(), 1);
    let req = &recorded[0];
    assert_eq!(req.method, "PUT");
    assert_eq!(req.path, "/customers/c%2042");
    assert_eq!(req.route.as_deref(), Some("/customers/{id}"));
    assert_eq!(req.param("id"), Some("c 42"));
    assert_eq!(req.query, "x=1&y=a%20b&x=2");
    assert_eq!(
        req.query_pairs,
        [
            ("x".to_owned(), "1".to_owned()),
            ("y".to_owned(), "a b".to_owned()),
            ("x".to_owned(), "2".to_owned())
        ]
    );
    assert_eq!(req.query_param("x"), Some("1"));
    assert_eq!(req.header("x-trace"), Some("abc"));
    assert!(req.headers.contains_key("x-trace"));
    assert_eq!(req.json, Some(json!({"name": "Ada"})));
    assert_eq!(req.body_text(), Some(r#"{"name":"Ada"}"#));
    // A concrete path selects too; another method or path does not.
    assert_eq!(mock.requests_to("put", "/customers/c%2042").len(), 1);
    assert!(mock.requests_to("GET", "/customers/{id}").is_empty());
    assert!(mock.requests_to("PUT", "/customers").is_empty());
}

#[tokio::test]
async fn literal_routes_win_over_params() {
    let mock = MockUpstream::start().await;
    mock.route("GET", "/customers/{id}", Reply::json(200, json!("param")));
    mock.route("GET", "/customers/me", Reply::json(200, json!("literal")));
    let http = client();
    let get = |path: &str| http.get(format!("{}{path}", mock.url())).send();
    assert_eq!(
        get("/customers/me")
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap(),
        "literal"
    );
    assert_eq!(
        get("/customers/7")
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap(),
        "param"
    );
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405() {
    let mock = MockUpstream::start().await;
    mock.route("POST", "/v1/charges", Reply::status(201));
    mock.route("GET", "/v1/charges", Reply::status(200));
    let http = client();

    let response = http
        .get(format!("{}/nope", mock.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"error": "not_found"})
    );

    let response = http
        .delete(format!("{}/v1/charges", mock.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET, POST");
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"error": "method_not_allowed"})
    );
    // Unmatched requests are recorded too, without a route.
    let all = mock.requests();
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|r| r.route.is_none()));
}

#[tokio::test]
async fn any_method_route_and_text_replies() {
    let mock = MockUpstream::start().await;
    mock.route("*", "/echo", Reply::text(202, "text/plain", "queued"));
    let response = client()
        .patch(format!("{}/echo", mock.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(response.headers()["content-type"], "text/plain");
    assert_eq!(response.text().await.unwrap(), "queued");
}

#[tokio::test]
async fn a_later_route_replaces_the_default() {
    let mock = MockUpstream::start().await;
    mock.route("GET", "/x", Reply::status(200));
    mock.route("GET", "/x", Reply::status(204));
    let response = client()
        .get(format!("{}/x", mock.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
}

#[tokio::test]
async fn invalid_reply_becomes_500_not_a_crash() {
    let mock = MockUpstream::start().await;
    mock.route(
        "GET",
        "/bad",
        Reply::status(200).with_header("bad header", "x"),
    );
    mock.route("GET", "/good", Reply::status(200));
    let http = client();
    let response = http
        .get(format!("{}/bad", mock.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_reply");
    let response = http
        .get(format!("{}/good", mock.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn hold_shows_a_request_in_flight_before_its_reply() {
    let mock = MockUpstream::start().await;
    mock.route(
        "POST",
        "/v1/charges",
        Reply::json(201, json!({"id": "ch_1"})),
    );
    mock.hold();
    let url = format!("{}/v1/charges", mock.url());
    let call = tokio::spawn(async move {
        client()
            .post(url)
            .json(&json!({"amount": 5}))
            .send()
            .await
            .map(|r| r.status())
    });

    assert!(mock.wait_for_requests(1, WAIT).await);
    assert_eq!(mock.in_flight(), 1);
    assert_eq!(mock.requests()[0].json, Some(json!({"amount": 5})));
    // The in-flight guard is dropped when the handler returns, before the
    // response is written, so a request still in flight has not been answered.
    assert!(!call.is_finished());
    // Absence cannot be polled for; a short bounded window makes a broken
    // hold fail every time rather than by chance.
    let mut call = call;
    assert!(
        tokio::time::timeout(Duration::from_millis(100), &mut call)
            .await
            .is_err(),
        "reply was sent while held"
    );
    assert_eq!(mock.in_flight(), 1);

    mock.release();
    let status = tokio::time::timeout(WAIT, call)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(status, 201);
    assert!(eventually(|| mock.in_flight() == 0).await);
    assert_eq!(mock.max_in_flight(), 1);
}

#[tokio::test]
async fn max_in_flight_counts_concurrent_requests() {
    const N: usize = 8;
    let mock = MockUpstream::start().await;
    mock.route("GET", "/slow", Reply::status(200));
    mock.hold();
    let http = client();
    let calls: Vec<_> = (0..N)
        .map(|_| {
            let (http, url) = (http.clone(), format!("{}/slow", mock.url()));
            tokio::spawn(async move { http.get(url).send().await.map(|r| r.status()) })
        })
        .collect();
    assert!(mock.wait_for_requests(N, WAIT).await);
    assert_eq!(mock.in_flight(), N);
    mock.release();
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap(), 200);
    }
    assert_eq!(mock.max_in_flight(), N);
    assert!(eventually(|| mock.in_flight() == 0).await);

    // Sequential calls never overlap, so the maximum does not grow.
    for _ in 0..3 {
        http.get(format!("{}/slow", mock.url()))
            .send()
            .await
            .unwrap();
    }
    assert_eq!(mock.max_in_flight(), N);
}

#[tokio::test]
async fn sequential_requests_have_max_in_flight_one() {
    let mock = MockUpstream::start().await;
    mock.route("GET", "/x", Reply::status(200));
    let http = client();
    for _ in 0..5 {
        http.get(format!("{}/x", mock.url())).send().await.unwrap();
    }
    assert_eq!(mock.request_count(), 5);
    assert_eq!(mock.max_in_flight(), 1);
}

#[tokio::test]
async fn delay_holds_the_reply_back() {
    let mock = MockUpstream::start().await;
    let delay = Duration::from_millis(150);
    mock.route("GET", "/slow", Reply::status(200).with_delay(delay));
    let started = Instant::now();
    let response = client()
        .get(format!("{}/slow", mock.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() >= delay);
}

#[tokio::test]
async fn wait_for_requests_times_out() {
    let mock = MockUpstream::start().await;
    assert!(!mock.wait_for_requests(1, Duration::from_millis(50)).await);
}

#[tokio::test]
async fn recording_can_be_turned_off_while_counting_continues() {
    let mock = MockUpstream::start().await;
    mock.route("GET", "/x", Reply::status(200));
    mock.set_recording(false);
    client()
        .get(format!("{}/x", mock.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(mock.request_count(), 1);
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn shutdown_answers_held_requests_and_closes_the_port() {
    let mock = MockUpstream::start().await;
    mock.route("GET", "/x", Reply::status(200));
    mock.hold();
    let url = format!("{}/x", mock.url());
    let call = {
        let url = url.clone();
        tokio::spawn(async move { client().get(url).send().await.map(|r| r.status()) })
    };
    assert!(mock.wait_for_requests(1, WAIT).await);
    tokio::time::timeout(WAIT, mock.shutdown()).await.unwrap();
    assert_eq!(call.await.unwrap().unwrap(), 503);
    assert!(client().get(&url).send().await.is_err());
}

#[tokio::test]
async fn the_fallback_answers_what_no_route_matches_and_routes_keep_precedence() {
    let mock = MockUpstream::start().await;
    mock.route("GET", "/health", Reply::json(200, json!({"ok": true})));
    mock.fallback_fn(|request| {
        Reply::json(
            418,
            json!({"method": request.method, "path": request.path, "body": request.json}),
        )
    });
    let http = client();
    let health = http
        .get(format!("{}/health", mock.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let other = http
        .put(format!("{}/customers/c1", mock.url()))
        .json(&json!({"name": "Ada"}))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 418);
    let body: Value = other.json().await.unwrap();
    assert_eq!(
        body,
        json!({"method": "PUT", "path": "/customers/c1", "body": {"name": "Ada"}})
    );
    let recorded = mock.requests();
    assert_eq!(recorded[1].route.as_deref(), Some("*"));
}
