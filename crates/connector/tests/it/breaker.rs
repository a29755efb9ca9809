//! The circuit breaker: a failing upstream stops receiving calls, a probe
//! tests it after `open_for`, and recovery closes the breaker again. Also
//! how `circuit_breaker` and `rate_limit` are written in YAML.
//!
//! Tests that wait for the breaker run on paused time ([`step_paused_time`]).

use std::sync::Arc;
use std::time::Duration;

use patchbay_config::MapEnv;
use patchbay_connector::{BreakerState, CallClass, Connector, RetryPolicy};
use patchbay_testkit::{MockUpstream, Reply};
use serde_json::json;
use tokio::time::Instant;

use crate::support::{build, closed_port, config, request, step_paused_time};

fn policy(attempts: u32) -> RetryPolicy {
    RetryPolicy {
        attempts,
        min: Duration::from_millis(5),
        max: Duration::from_millis(20),
    }
}

/// A connector whose breaker opens at 50% failures over 4 calls and probes
/// after 300ms.
fn fragile(url: &str) -> Connector {
    build(&format!(
        "dangerous_allow_private: true\nurl: {url}\ncircuit_breaker: {{ failure_rate: 50%, min_calls: 4, window: 10s, open_for: 300ms }}\n"
    ))
}

/// Sends one call and returns its error class (`Success` when it worked).
async fn outcome(connector: &Connector) -> CallClass {
    match connector.send(&request("GET", "/items"), policy(1)).await {
        Ok(_) => CallClass::Success,
        Err(failed) => failed.error.class(),
    }
}

/// Waits out the open breaker, as long as its error says.
async fn sit_out(connector: &Connector) {
    let failed = connector
        .send(&request("GET", "/items"), policy(1))
        .await
        .unwrap_err();
    assert_eq!(failed.error.class(), CallClass::CircuitOpen);
    let retry_in = failed
        .error
        .retry_after()
        .expect("an open breaker says when");
    assert!(retry_in <= Duration::from_millis(300), "{retry_in:?}");
    // When to try again is for the scheduler; the message, which a dead
    // run keeps, states what happened.
    let message = failed.error.to_string();
    assert!(
        message.ends_with("circuit breaker open, call not sent"),
        "{message}"
    );
    tokio::time::sleep(retry_in).await;
}

#[tokio::test(start_paused = true)]
async fn a_down_upstream_opens_the_breaker_until_a_probe_succeeds() {
    step_paused_time();
    let mock = MockUpstream::start().await;
    mock.route("GET", "/items", Reply::status(503));
    let connector = fragile(&mock.url());

    for _ in 0..4 {
        assert_eq!(outcome(&connector).await, CallClass::ServerError);
    }
    let health = connector.health();
    assert_eq!(health.breaker, BreakerState::Open);
    assert!(health.breaker_retry_in.is_some());

    // Open: calls fail fast and the upstream sees none of them.
    let started = Instant::now();
    for _ in 0..20 {
        assert_eq!(outcome(&connector).await, CallClass::CircuitOpen);
    }
    assert!(started.elapsed() < Duration::from_millis(250));
    assert_eq!(mock.request_count(), 4);

    // Half-open, still down: the probe goes through, fails, and reopens it.
    sit_out(&connector).await;
    assert_eq!(connector.health().breaker, BreakerState::HalfOpen);
    assert_eq!(outcome(&connector).await, CallClass::ServerError);
    assert_eq!(mock.request_count(), 5);
    assert_eq!(connector.health().breaker, BreakerState::Open);
    assert_eq!(outcome(&connector).await, CallClass::CircuitOpen);
    assert_eq!(mock.request_count(), 5);

    // Recovered: the next probe closes it and calls flow again.
    mock.route("GET", "/items", Reply::json(200, json!({ "ok": true })));
    sit_out(&connector).await;
    for _ in 0..5 {
        assert_eq!(outcome(&connector).await, CallClass::Success);
    }
    assert_eq!(mock.request_count(), 10);
    let health = connector.health();
    assert_eq!(health.breaker, BreakerState::Closed);
    assert_eq!(health.calls_in_window, 4, "the window restarts on closing");
    assert_eq!(health.failure_rate, 0.0);
}

#[tokio::test(start_paused = true)]
async fn half_open_lets_only_the_probes_through() {
    step_paused_time();
    let mock = MockUpstream::start().await;
    mock.route("GET", "/items", Reply::status(500));
    let connector = Arc::new(fragile(&mock.url()));
    for _ in 0..4 {
        outcome(&connector).await;
    }
    sit_out(&connector).await;
    // A slow recovery: the probe takes a while to answer.
    mock.route(
        "GET",
        "/items",
        Reply::json(200, json!({})).with_delay(Duration::from_millis(200)),
    );
    let mut calls = Vec::new();
    for _ in 0..6 {
        let connector = Arc::clone(&connector);
        calls.push(tokio::spawn(async move { outcome(&connector).await }));
    }
    let mut classes = Vec::new();
    for call in calls {
        classes.push(call.await.unwrap());
    }
    let probes = classes.iter().filter(|c| **c == CallClass::Success).count();
    let refused = classes
        .iter()
        .filter(|c| **c == CallClass::CircuitOpen)
        .count();
    assert_eq!((probes, refused), (1, 5), "{classes:?}");
    assert_eq!(mock.request_count(), 5);
    assert_eq!(connector.health().breaker, BreakerState::Closed);
}

#[tokio::test]
async fn resets_and_refused_connections_count_as_failures() {
    let mock = MockUpstream::start().await;
    mock.route("GET", "/items", Reply::reset());
    let connector = fragile(&mock.url());
    for _ in 0..4 {
        assert_eq!(outcome(&connector).await, CallClass::Connect);
    }
    assert_eq!(outcome(&connector).await, CallClass::CircuitOpen);
    assert_eq!(mock.request_count(), 4);

    let refused = fragile(&format!("http://127.0.0.1:{}", closed_port()));
    for _ in 0..4 {
        assert_eq!(outcome(&refused).await, CallClass::Connect);
    }
    assert_eq!(outcome(&refused).await, CallClass::CircuitOpen);
}

#[tokio::test]
async fn client_errors_and_rate_limits_do_not_open_it() {
    let mock = MockUpstream::start().await;
    mock.route("GET", "/items", Reply::status(404));
    mock.script(
        "GET",
        "/items",
        [
            Reply::status(429),
            Reply::status(429),
            Reply::status(400),
            Reply::status(422),
        ],
    );
    let connector = fragile(&mock.url());
    for _ in 0..10 {
        assert_eq!(outcome(&connector).await, CallClass::ClientError);
    }
    assert_eq!(mock.request_count(), 10);
    let health = connector.health();
    assert_eq!(health.breaker, BreakerState::Closed);
    assert_eq!((health.calls_in_window, health.failure_rate), (10, 0.0));
}

#[tokio::test(start_paused = true)]
async fn retries_stop_as_soon_as_it_opens() {
    step_paused_time();
    let mock = MockUpstream::start().await;
    mock.route("GET", "/items", Reply::status(502));
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}\ncircuit_breaker: {{ min_calls: 2, open_for: 10s }}\n",
        mock.url()
    ));
    let failed = connector
        .send(&request("GET", "/items"), policy(6))
        .await
        .unwrap_err();
    assert_eq!(failed.error.class(), CallClass::CircuitOpen);
    assert_eq!(failed.error.class().as_str(), "circuit_open");
    assert!(failed.error.is_transient());
    assert!(!failed.error.is_retried_in_call());
    assert_eq!(failed.attempts, 3, "two failures, then the open breaker");
    assert_eq!(mock.request_count(), 2);
}

#[tokio::test]
async fn switched_off_it_never_opens() {
    let mock = MockUpstream::start().await;
    mock.route("GET", "/items", Reply::status(503));
    for setting in ["off", "false", "{ enabled: false, min_calls: 1 }"] {
        let connector = build(&format!(
            "dangerous_allow_private: true\nurl: {}\ncircuit_breaker: {setting}\n",
            mock.url()
        ));
        for _ in 0..25 {
            assert_eq!(outcome(&connector).await, CallClass::ServerError);
        }
        assert_eq!(
            connector.health().breaker,
            BreakerState::Disabled,
            "{setting}"
        );
    }
    assert_eq!(mock.request_count(), 75);
}

#[test]
fn defaults_and_written_forms() {
    let plain = config("dangerous_allow_private: true\nurl: http://api.test\n");
    let breaker = &plain.circuit_breaker;
    assert!(breaker.enabled);
    assert_eq!(breaker.failure_rate, 50.0);
    assert_eq!(breaker.min_calls, 20);
    assert_eq!(breaker.window.0, Duration::from_secs(60));
    assert_eq!(breaker.open_for.0, Duration::from_secs(30));
    assert_eq!(breaker.half_open_calls, 1);
    assert!(plain.rate_limit.is_none());

    let written = config(
        "dangerous_allow_private: true\nurl: http://api.test\n\
         circuit_breaker: { failure_rate: 25%, min_calls: 5 }\n\
         rate_limit: { requests: 50, key: '.tenant' }\n",
    );
    assert_eq!(written.circuit_breaker.failure_rate, 25.0);
    assert_eq!(written.circuit_breaker.min_calls, 5);
    assert_eq!(written.circuit_breaker.window.0, Duration::from_secs(60));
    let limit = written.rate_limit.as_ref().unwrap();
    assert_eq!(limit.requests, 50);
    assert_eq!(limit.per.0, Duration::from_secs(1));
    assert_eq!(limit.burst, 1);
    assert_eq!(limit.max_wait.0, Duration::from_secs(30));
    assert_eq!(limit.key.as_ref().map(|k| k.as_str()), Some(".tenant"));
    assert!(
        config("dangerous_allow_private: true\nurl: http://api.test\ncircuit_breaker: { failure_rate: 75 }\n")
            .circuit_breaker
            .failure_rate
            == 75.0
    );
    assert!(
        !config("dangerous_allow_private: true\nurl: http://api.test\ncircuit_breaker: off\n")
            .circuit_breaker
            .enabled
    );

    for bad in [
        "dangerous_allow_private: true\nurl: http://api.test\ncircuit_breaker: sometimes\n",
        "dangerous_allow_private: true\nurl: http://api.test\ncircuit_breaker: { failure_rate: lots }\n",
        "dangerous_allow_private: true\nurl: http://api.test\ncircuit_breaker: { open_after: 3 }\n",
        "dangerous_allow_private: true\nurl: http://api.test\nrate_limit: { per: 1s }\n",
        "dangerous_allow_private: true\nurl: http://api.test\nrate_limit: { requests: 5, burst_size: 2 }\n",
    ] {
        let parsed: Result<patchbay_config::ConnectorConfig, _> = serde_saphyr::from_str(bad);
        assert!(parsed.is_err(), "accepted {bad:?}");
    }
}

#[test]
fn impossible_settings_do_not_build() {
    for bad in [
        "rate_limit: { requests: 0 }",
        "rate_limit: { requests: 5, burst: 0 }",
        "rate_limit: { requests: 5, per: 0s }",
        "circuit_breaker: { failure_rate: 0 }",
        "circuit_breaker: { failure_rate: 150% }",
        "circuit_breaker: { min_calls: 0 }",
        "circuit_breaker: { half_open_calls: 0 }",
    ] {
        let yaml = format!("dangerous_allow_private: true\nurl: http://api.test\n{bad}\n");
        let error = Connector::build("crm", &config(&yaml), &MapEnv::default())
            .expect_err(bad)
            .to_string();
        assert!(error.starts_with("connector `crm`:"), "{error}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_keyed_breaker_opens_for_its_own_key_only() {
    step_paused_time();
    let mock = MockUpstream::start().await;
    mock.route("GET", "/broken", Reply::status(503));
    mock.route("GET", "/items", Reply::json(200, json!([])));
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}\ncircuit_breaker: {{ min_calls: 4, window: 10s, open_for: 300ms, key: '.path' }}\n",
        mock.url()
    ));
    let keyed = |path: &str| patchbay_connector::CallRequest {
        breaker_key: Some(path.to_string()),
        ..request("GET", path)
    };
    for _ in 0..4 {
        let failed = connector
            .send(&keyed("/broken"), policy(1))
            .await
            .unwrap_err();
        assert_eq!(failed.error.class(), CallClass::ServerError);
    }
    let refused = connector
        .send(&keyed("/broken"), policy(1))
        .await
        .unwrap_err();
    assert_eq!(refused.error.class(), CallClass::CircuitOpen);
    assert!(
        refused
            .error
            .to_string()
            .ends_with("circuit breaker `/broken` open, call not sent"),
        "{}",
        refused.error
    );
    // Another key of the same connector is untouched.
    for _ in 0..5 {
        connector.send(&keyed("/items"), policy(1)).await.unwrap();
    }
    let health = connector.health();
    assert_eq!(
        health.breaker,
        BreakerState::Open,
        "the worst of its breakers"
    );
    let listed: Vec<(&str, BreakerState, u32)> = health
        .keyed_breakers
        .iter()
        .map(|b| (b.key.as_str(), b.state, b.calls))
        .collect();
    assert_eq!(
        listed,
        [
            ("/broken", BreakerState::Open, 4),
            ("/items", BreakerState::Closed, 5)
        ]
    );
    assert_eq!(mock.requests_to("GET", "/broken").len(), 4);
}
