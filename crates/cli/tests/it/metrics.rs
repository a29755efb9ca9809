//! `GET /metrics` after a known workload on the real binary: successful
//! webhooks, an upstream that keeps failing until its breaker opens. The
//! counts are exact, and no label carries a run id or a URL.

use std::time::Duration;

use patchbay_testkit::{MockUpstream, Reply};
use serde_json::json;

use crate::support::{Patchbay, TestProject, patchbay_run, post_json};

const ROOT: &str = "\
connectors:
  good:
    url: \"${env:GOOD_URL}\"
    dangerous_allow_private: true
    rate_limit: { requests: 1000, per: 1s, burst: 100 }
  bad:
    url: \"${env:BAD_URL}\"
    dangerous_allow_private: true
    retry: { attempts: 2, backoff: { min: 1ms, max: 5ms } }
    circuit_breaker: { min_calls: 4, failure_rate: 50, open_for: 10m }
";

const OK_FLOW: &str = "\
trigger: { webhook: { path: /hooks/ok } }
steps:
  - id: push
    call: good POST /items
    body: '{n}'
";

const FAIL_FLOW: &str = "\
trigger: { webhook: { path: /hooks/fail } }
run_retries: []
steps:
  - id: fetch
    call: bad GET /items/{.n}
";

/// The value of the sample `name{labels}` in a Prometheus text exposition;
/// `labels` must be exactly the sample's label set.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut wanted: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    wanted.sort();
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, mut found) = match series.split_once('{') {
                Some((series_name, rest)) => {
                    let body = rest.strip_suffix('}')?;
                    let pairs: Vec<(String, String)> = body
                        .split("\",")
                        .filter(|p| !p.is_empty())
                        .filter_map(|pair| {
                            let (k, v) = pair.split_once("=\"")?;
                            Some((k.to_string(), v.trim_end_matches('"').to_string()))
                        })
                        .collect();
                    (series_name, pairs)
                }
                None => (series, Vec::new()),
            };
            found.sort();
            (series_name == name && found == wanted).then(|| value.parse().ok())?
        })
}

/// The text of `GET {base}/metrics`.
pub async fn scrape(base: &str) -> String {
    let response = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("metrics answered");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    response.text().await.expect("metrics text")
}

async fn wait_for_sample(base: &str, name: &str, labels: &[(&str, &str)], value: f64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = scrape(base).await;
        if sample(&text, name, labels) == Some(value) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name}{labels:?} never reached {value}; last scrape:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_known_workload_gives_exact_counts() {
    let good = MockUpstream::start().await;
    good.route("POST", "/items", Reply::json(201, json!({ "ok": true })));
    let bad = MockUpstream::start().await;
    bad.route("GET", "/items/{n}", Reply::status(503));
    let project = TestProject::new(ROOT, &[("ok", OK_FLOW), ("fail", FAIL_FLOW)]);
    let log = project.path().join("patchbay.log");
    let node = Patchbay::spawn(
        patchbay_run(
            project.path(),
            &[("GOOD_URL", good.url()), ("BAD_URL", bad.url())],
        ),
        &log,
    );
    let base = node.base.clone();

    // Five events at once, so intake may batch them.
    let sends = (0..5).map(|n| {
        let url = format!("{base}/hooks/ok");
        async move { post_json(&url, &json!({ "n": n })).await.status() }
    });
    for status in futures_join(sends).await {
        assert_eq!(status, 202);
    }
    wait_for_sample(
        &base,
        "patchbay_runs_finished_total",
        &[("flow", "ok"), ("status", "succeeded")],
        5.0,
    )
    .await;

    // Failing runs one after the other: two attempts each, until the
    // fourth failure opens the breaker and the third run is refused.
    for (n, finished) in [(1, 1.0), (2, 2.0), (3, 3.0)] {
        let response = post_json(&format!("{base}/hooks/fail"), &json!({ "n": n })).await;
        assert_eq!(response.status(), 202);
        wait_for_sample(
            &base,
            "patchbay_runs_finished_total",
            &[("flow", "fail"), ("status", "dead")],
            finished,
        )
        .await;
    }
    // Not found, and not a run: no metric moves.
    let missing = post_json(&format!("{base}/hooks/none"), &json!({})).await;
    assert_eq!(missing.status(), 404);

    // The queue gauges are sampled every few seconds.
    wait_for_sample(&base, "patchbay_queue_runs", &[("state", "ready")], 0.0).await;
    wait_for_sample(&base, "patchbay_queue_runs", &[("state", "running")], 0.0).await;
    let text = scrape(&base).await;
    let value = |name: &str, labels: &[(&str, &str)]| {
        sample(&text, name, labels).unwrap_or_else(|| panic!("no {name}{labels:?} in\n{text}"))
    };
    let webhook = |flow| [("flow", flow), ("trigger", "webhook")];
    assert_eq!(value("patchbay_runs_accepted_total", &webhook("ok")), 5.0);
    assert_eq!(value("patchbay_runs_accepted_total", &webhook("fail")), 3.0);
    assert_eq!(value("patchbay_runs_started_total", &[("flow", "ok")]), 5.0);
    assert_eq!(
        value("patchbay_runs_started_total", &[("flow", "fail")]),
        3.0
    );
    // Every event found a free worker (64 by default): none waited in the
    // queue for a claim.
    assert_eq!(
        value("patchbay_runs_handed_over_total", &[("flow", "ok")]),
        5.0
    );
    assert_eq!(
        value("patchbay_runs_handed_over_total", &[("flow", "fail")]),
        3.0
    );
    assert_eq!(value("patchbay_intake_batch_runs_sum", &[]), 8.0);
    assert_eq!(
        value(
            "patchbay_run_duration_seconds_count",
            &[("flow", "fail"), ("status", "dead")]
        ),
        3.0
    );
    assert_eq!(
        value(
            "patchbay_step_duration_seconds_count",
            &[
                ("flow", "ok"),
                ("step", "push"),
                ("kind", "call"),
                ("status", "succeeded")
            ]
        ),
        5.0
    );
    assert_eq!(
        value(
            "patchbay_step_duration_seconds_count",
            &[
                ("flow", "fail"),
                ("step", "fetch"),
                ("kind", "call"),
                ("status", "failed")
            ]
        ),
        3.0
    );
    assert_eq!(
        value(
            "patchbay_connector_requests_total",
            &[("connector", "good"), ("status_class", "2xx")]
        ),
        5.0
    );
    assert_eq!(
        value(
            "patchbay_connector_requests_total",
            &[("connector", "bad"), ("status_class", "5xx")]
        ),
        4.0
    );
    assert_eq!(
        value("patchbay_connector_retries_total", &[("connector", "bad")]),
        2.0
    );
    assert_eq!(
        value(
            "patchbay_connector_calls_refused_total",
            &[("connector", "bad"), ("reason", "circuit_open")]
        ),
        1.0
    );
    assert_eq!(
        value(
            "patchbay_connector_rate_limit_wait_seconds_count",
            &[("connector", "good")]
        ),
        5.0
    );
    let breaker = |connector, state| {
        value(
            "patchbay_connector_breaker_state",
            &[("connector", connector), ("state", state)],
        )
    };
    assert_eq!(breaker("good", "closed"), 1.0);
    assert_eq!(breaker("bad", "open"), 1.0);
    assert_eq!(breaker("bad", "closed"), 0.0);
    assert_eq!(value("patchbay_queue_oldest_age_seconds", &[]), 0.0);
    assert_eq!(bad.request_count(), 4);

    // Histograms have buckets, and no label carries an id or a URL.
    assert!(
        text.contains("patchbay_run_duration_seconds_bucket{"),
        "{text}"
    );
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(!line.contains("http"), "a URL in a label: {line}");
        assert!(!line.contains("/items"), "a path in a label: {line}");
        assert!(
            !line
                .split(['"', '{', '}', ',', '='])
                .any(|part| uuid::Uuid::parse_str(part).is_ok()),
            "an id in a label: {line}"
        );
    }
    node.terminate();
}

/// Building connectors sets their breaker gauges; a reload that fails or
/// changes nothing builds connectors it does not keep, and the gauges still
/// describe those in service.
#[tokio::test]
async fn breaker_gauges_follow_the_connectors_in_service_across_reloads() {
    let good = MockUpstream::start().await;
    let bad = MockUpstream::start().await;
    bad.route("GET", "/items/{n}", Reply::status(503));
    let project = TestProject::new(ROOT, &[("ok", OK_FLOW), ("fail", FAIL_FLOW)]);
    let log = project.path().join("patchbay.log");
    let node = Patchbay::spawn(
        patchbay_run(
            project.path(),
            &[("GOOD_URL", good.url()), ("BAD_URL", bad.url())],
        ),
        &log,
    );
    let base = node.base.clone();
    let bad_is_open = [("connector", "bad"), ("state", "open")];
    for n in 1..=2 {
        let response = post_json(&format!("{base}/hooks/fail"), &json!({ "n": n })).await;
        assert_eq!(response.status(), 202);
    }
    wait_for_sample(&base, "patchbay_connector_breaker_state", &bad_is_open, 1.0).await;

    let client = reqwest::Client::new();
    let reload = || async {
        client
            .post(format!("{base}/api/v1/config/reload"))
            .send()
            .await
            .expect("reload answered")
            .status()
    };
    // Nothing changed: nothing is swapped.
    assert_eq!(reload().await, 200);
    let text = scrape(&base).await;
    assert_eq!(
        sample(&text, "patchbay_connector_breaker_state", &bad_is_open),
        Some(1.0),
        "{text}"
    );
    // A flow that does not compile: the reload is refused, its connectors
    // (built to check them) are thrown away.
    std::fs::write(
        project.path().join("flows/broken.yaml"),
        "trigger: { manual: {} }\nsteps:\n  - transform: '.a |'\n",
    )
    .unwrap();
    assert!(reload().await.is_client_error());
    let text = scrape(&base).await;
    assert_eq!(
        sample(&text, "patchbay_connector_breaker_state", &bad_is_open),
        Some(1.0),
        "{text}"
    );
    node.terminate();
}

/// Runs futures concurrently and collects their outputs in order.
async fn futures_join<F, T>(futures: impl IntoIterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.expect("task"));
    }
    out
}

/// With API tokens configured, `/metrics` asks for one like the API does:
/// flow and connector names and error rates are what `read` shows.
#[tokio::test]
async fn metrics_need_a_token_when_the_api_has_tokens() {
    let token = "metrics-reader-0123456789";
    let root = format!(
        "api:\n  tokens:\n    - name: prometheus\n      token: {token}\n      scopes: [read]\n"
    );
    let project = TestProject::new(&root, &[]);
    let log = project.path().join("patchbay.log");
    let node = Patchbay::spawn(patchbay_run(project.path(), &[]), &log);
    let url = format!("{}/metrics", node.base);
    let client = reqwest::Client::new();

    let anonymous = client.get(&url).send().await.expect("scrape");
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.headers().contains_key("www-authenticate"));
    let wrong = client
        .get(&url)
        .bearer_auth("nope-0123456789abcdef")
        .send()
        .await
        .expect("scrape");
    assert_eq!(wrong.status(), 401);
    let scraped = client
        .get(&url)
        .bearer_auth(token)
        .send()
        .await
        .expect("scrape");
    assert_eq!(scraped.status(), 200);
    let text = scraped.text().await.expect("text");
    // Present from the start, before anything has been recorded.
    let build_info = format!(
        "patchbay_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    assert!(text.contains(&build_info), "{text}");
    node.stop_cleanly();
}
