//! Webhook → run → call → journal, asynchronous and synchronous.

use std::time::Duration;

use patchbay_store::{RunStatus, StepStatus};
use patchbay_testkit::{MockUpstream, Reply};
use serde_json::{Value, json};

use crate::support::{TestProject, env, eventually, get_json, post_json};

const ROOT: &str = "\
connectors:
  erp:
    url: \"${env:ERP_URL}/api\"
    dangerous_allow_private: true
    headers: { X-Tenant: acme }
    auth: { api_key: { header: X-Api-Key, value: \"${env:ERP_KEY}\" } }
";

#[tokio::test]
async fn async_webhook_runs_the_flow_and_journals_each_step() {
    let erp = MockUpstream::start().await;
    erp.route(
        "PUT",
        "/api/customers/{id}",
        Reply::json(200, json!({ "ok": true, "erp_id": 77 })),
    );
    let project = TestProject::new(
        ROOT,
        &[(
            "new-order",
            "\
trigger: { webhook: { path: /hooks/orders } }
steps:
  - id: shape
    transform: '{id: .customer.id, name: .customer.name, total: .total_cents}'
  - id: push
    call: erp PUT /customers/{$steps.shape.id}
    query: '{source: \"shop\", order: .order_id}'
    headers: '{\"X-Order\": .order_id}'
    body: '$steps.shape + {channel: \"web\"}'
",
        )],
    );
    let env = env(&[("ERP_URL", erp.url()), ("ERP_KEY", "k-123".into())]);
    let node = project.start(&env).await;
    let url = format!("http://{}/hooks/orders", node.address);

    let response = reqwest::Client::new()
        .post(&url)
        .json(&json!({ "order_id": "ord_1", "total_cents": 1250, "customer": { "id": "cus 7/x", "name": "Ada" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    let run_id: uuid::Uuid = body["run_id"].as_str().unwrap().parse().unwrap();

    let store = node.engine.store().clone();
    let finished = eventually(Duration::from_secs(10), || {
        let store = store.clone();
        async move {
            store
                .run(run_id)
                .await
                .unwrap()
                .is_some_and(|r| r.status == RunStatus::Succeeded)
        }
    })
    .await;
    assert!(
        finished,
        "run did not succeed: {:?}",
        store.run(run_id).await.unwrap()
    );

    let requests = erp.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "PUT");
    // The path value is percent-encoded as one segment.
    assert_eq!(request.path, "/api/customers/cus%207%2Fx");
    assert_eq!(request.query_param("source"), Some("shop"));
    assert_eq!(request.query_param("order"), Some("ord_1"));
    assert_eq!(request.header("x-api-key"), Some("k-123"));
    assert_eq!(request.header("x-tenant"), Some("acme"));
    assert_eq!(request.header("x-order"), Some("ord_1"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.json,
        Some(json!({ "id": "cus 7/x", "name": "Ada", "total": 1250, "channel": "web" }))
    );

    let journal = store.journal(run_id).await.unwrap();
    assert_eq!(journal.len(), 2);
    assert_eq!(journal[0].step_id, "shape");
    assert_eq!(journal[1].step_id, "push");
    assert!(journal.iter().all(|e| e.status == StepStatus::Succeeded));
    let push = journal[1].output.as_ref().unwrap();
    assert_eq!(push["status"], 200);
    assert_eq!(push["body"]["erp_id"], 77);
    let summary = journal[1].request.as_ref().unwrap();
    assert_eq!(summary["method"], "PUT");
    assert_eq!(summary["status"], 200);
    let run = store.run(run_id).await.unwrap().unwrap();
    assert_eq!(run.output.as_ref().unwrap()["body"]["erp_id"], 77);
    assert_eq!(run.trigger, "webhook");
    node.stop().await.unwrap();
}

#[tokio::test]
async fn failing_upstream_fails_the_run_with_the_reason() {
    let erp = MockUpstream::start().await;
    erp.route(
        "POST",
        "/api/orders",
        Reply::json(422, json!({ "error": "bad_total" })),
    );
    let project = TestProject::new(
        ROOT,
        &[(
            "push",
            "trigger: { webhook: { path: /hooks/push } }\nsteps:\n  - id: send\n    call: erp POST /orders\n    body: '.'\n  - id: never\n    transform: '1'\n",
        )],
    );
    let env = env(&[("ERP_URL", erp.url()), ("ERP_KEY", "k".into())]);
    let node = project.start(&env).await;
    let response = post_json(
        &format!("http://{}/hooks/push", node.address),
        &json!({ "total": -1 }),
    )
    .await;
    let run_id: uuid::Uuid = response.json::<Value>().await.unwrap()["run_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let run = node
        .engine
        .wait_for(run_id, Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.status, RunStatus::Dead);
    let error = run.error.unwrap();
    assert!(
        error.contains("step `send` (call)")
            && error.contains("422")
            && error.contains("bad_total"),
        "{error}"
    );
    let journal = node.engine.store().journal(run_id).await.unwrap();
    assert_eq!(journal.len(), 1, "the step after the failure must not run");
    assert_eq!(journal[0].status, StepStatus::Failed);
    node.stop().await.unwrap();
}

#[tokio::test]
async fn sync_webhook_answers_with_the_respond_step() {
    let erp = MockUpstream::start().await;
    erp.route_fn("GET", "/api/prices/{sku}", |req| {
        Reply::json(200, json!({ "sku": req.param("sku"), "unit_cents": 250 }))
    });
    let project = TestProject::new(
        ROOT,
        &[(
            "quote",
            "\
trigger: { webhook: { path: /hooks/quote, mode: sync, timeout: 5s } }
steps:
  - id: price
    call: erp GET /prices/{.sku}
  - respond:
      status: 201
      headers: '{\"x-quote\": \"q-\\(.sku)\"}'
      body: '{sku, total_cents: ($steps.price.body.unit_cents * .quantity)}'
  - id: after
    transform: '\"done\"'
",
        )],
    );
    let env = env(&[("ERP_URL", erp.url()), ("ERP_KEY", "k".into())]);
    let node = project.start(&env).await;
    let response = post_json(
        &format!("http://{}/hooks/quote", node.address),
        &json!({ "sku": "A1", "quantity": 3 }),
    )
    .await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-quote"], "q-A1");
    let run_id: uuid::Uuid = response.headers()["patchbay-run-id"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({ "sku": "A1", "total_cents": 750 })
    );
    let run = node
        .engine
        .wait_for(run_id, Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(run.output, Some(json!("done")));
    node.stop().await.unwrap();
}

#[tokio::test]
async fn sync_webhook_reports_a_failed_run_and_a_timeout() {
    let erp = MockUpstream::start().await;
    erp.route(
        "GET",
        "/api/slow",
        Reply::json(200, json!({})).with_delay(Duration::from_secs(3)),
    );
    erp.route("GET", "/api/broken", Reply::status(400));
    erp.route("GET", "/api/down", Reply::status(503));
    let project = TestProject::new(
        ROOT,
        &[
            (
                "slow",
                "trigger: { webhook: { path: /hooks/slow, mode: sync, timeout: 300ms } }\nsteps:\n  - call: erp GET /slow\n  - respond: { body: '1' }\n",
            ),
            (
                "broken",
                "trigger: { webhook: { path: /hooks/broken, mode: sync } }\nsteps:\n  - call: erp GET /broken\n  - respond: { body: '1' }\n",
            ),
            (
                "down",
                "trigger: { webhook: { path: /hooks/down, mode: sync } }\nsteps:\n  - call: erp GET /down\n  - respond: { body: '1' }\n",
            ),
        ],
    );
    let env = env(&[("ERP_URL", erp.url()), ("ERP_KEY", "k".into())]);
    let node = project.start(&env).await;
    let slow = post_json(&format!("http://{}/hooks/slow", node.address), &json!({})).await;
    assert_eq!(slow.status(), 504);
    let body: Value = slow.json().await.unwrap();
    assert_eq!(body["error"]["code"], "respond_timeout");
    assert!(body["error"]["details"]["run_id"].is_string());

    let broken = post_json(&format!("http://{}/hooks/broken", node.address), &json!({})).await;
    assert_eq!(broken.status(), 502);
    let body: Value = broken.json().await.unwrap();
    assert_eq!(body["error"]["code"], "run_failed");
    let message = body["error"]["message"].as_str().unwrap();
    let run_id = body["error"]["details"]["run_id"].as_str().unwrap();
    assert!(message.contains(run_id), "{body}");
    assert!(
        !message.contains("erp") && !message.contains("/broken"),
        "internals leaked: {body}"
    );
    let run: Value = get_json(&format!("http://{}/api/v1/runs/{run_id}", node.address)).await;
    assert!(
        run["run"]["error"].as_str().unwrap().contains("400"),
        "{run}"
    );

    // A transient failure reschedules the run: the caller hears at once that
    // it was accepted and will finish later.
    let down = post_json(&format!("http://{}/hooks/down", node.address), &json!({})).await;
    assert_eq!(down.status(), 202);
    let body: Value = down.json().await.unwrap();
    assert_eq!(body["status"], "queued");
    node.stop().await.unwrap();
}

#[tokio::test]
async fn repeated_request_headers_keep_every_value() {
    let project = TestProject::new(
        "",
        &[(
            "tags",
            "trigger: { webhook: { path: /hooks/tags, mode: sync } }\nsteps:\n  - respond: { body: '$headers[\"x-tag\"]' }\n",
        )],
    );
    let node = project.start(&env(&[])).await;
    let response = reqwest::Client::new()
        .post(format!("http://{}/hooks/tags", node.address))
        .header("x-tag", "a")
        .header("x-tag", "b")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.json::<Value>().await.unwrap(), json!("a, b"));
    node.stop().await.unwrap();
}

/// A provider's verification handshake and its events on one path, as
/// Meta's webhooks do it: a `GET` carrying `hub.challenge`, answered with
/// the challenge in plain text, then `POST`ed events; form bodies (Slack,
/// Twilio, GitHub's form option) become objects; `$query` is the query
/// string of either.
#[tokio::test]
async fn handshakes_forms_and_query_strings_reach_the_flow() {
    let project = TestProject::new(
        "",
        &[
            (
                "meta",
                "\
trigger: { webhook: { path: /hooks/meta, methods: [GET, POST], mode: sync, timeout: 5s } }
steps:
  - id: route
    switch:
      cases:
        - name: handshake
          when: '.[\"hub.mode\"] == \"subscribe\"'
          steps:
            - respond:
                headers: '{\"content-type\": \"text/plain\"}'
                body: '.[\"hub.challenge\"]'
      default:
        - respond: { body: '{entries: (.entry | length), account: $query.account, key: $query.api_key}' }
",
            ),
            (
                "slack",
                "\
trigger: { webhook: { path: /hooks/slack, mode: sync, timeout: 5s } }
steps:
  - respond: { body: '{command, text, channel: $query.channel, tags: .tag, headers: ($headers | has(\":query\"))}' }
",
            ),
        ],
    );
    let node = project.start(&env(&[])).await;
    let client = reqwest::Client::new();
    let base = format!("http://{}", node.address);

    let handshake = client
        .get(format!(
            "{base}/hooks/meta?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=tok"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(handshake.status(), 200);
    assert!(
        handshake.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(handshake.text().await.unwrap(), "1158201444");

    let event = client
        .post(format!("{base}/hooks/meta?account=a-7&api_key=k-secret-1"))
        .json(&json!({ "entry": [1, 2, 3] }))
        .send()
        .await
        .unwrap();
    assert_eq!(event.status(), 200);
    assert_eq!(
        event.json::<Value>().await.unwrap(),
        json!({ "entries": 3, "account": "a-7", "key": "****" })
    );
    // Nor is it kept with either run: a credential in a query string is
    // masked before anything is stored, as a credential header is.
    let store = node.engine.store();
    let runs = store
        .list_runs(&patchbay_store::RunFilter::default())
        .await
        .unwrap();
    for run in runs.iter().filter(|run| run.flow == "meta") {
        let stored = serde_json::to_string(&store.run(run.id).await.unwrap()).unwrap();
        assert!(!stored.contains("k-secret-1"), "{stored}");
        assert!(!stored.contains("\"tok\""), "{stored}");
    }

    let form = client
        .post(format!("{base}/hooks/slack?channel=ops"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("command=%2Fdeploy&text=api+v2&tag=a&tag=b")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200);
    assert_eq!(
        form.json::<Value>().await.unwrap(),
        json!({
            "command": "/deploy",
            "text": "api v2",
            "channel": "ops",
            "tags": ["a", "b"],
            "headers": false
        })
    );

    // Only the methods a flow takes: a GET on a POST-only path is refused,
    // saying what it takes.
    let refused = client
        .get(format!("{base}/hooks/slack"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 405);
    assert_eq!(refused.headers()["allow"], "POST");
    node.stop().await.unwrap();
}
