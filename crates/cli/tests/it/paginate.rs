//! Paginated calls, GraphQL steps and per-key rate limits, run by a node.

use std::time::Duration;

use patchbay_store::RunStatus;
use patchbay_testkit::{MockUpstream, Reply};
use serde_json::{Value, json};

use crate::support::{TestProject, env, run_manually};

const ROOT: &str = "\
connectors:
  crm:
    url: \"${env:CRM_URL}\"
    dangerous_allow_private: true
";

/// A contact list of 10 pages of 3, chained by `next` cursors.
fn serve_pages(crm: &MockUpstream) {
    crm.route_fn("GET", "/contacts", |request| {
        let page: u32 = request
            .query_param("cursor")
            .and_then(|c| c.strip_prefix('c'))
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        let data: Vec<Value> = (0..3)
            .map(|i| json!({ "id": (page - 1) * 3 + i }))
            .collect();
        let next = (page < 10).then(|| format!("c{}", page + 1));
        Reply::json(200, json!({ "data": data, "next": next }))
    });
}

#[tokio::test]
async fn a_paginated_call_collects_every_item_in_order() {
    let crm = MockUpstream::start().await;
    serve_pages(&crm);
    let flow = "\
trigger: { manual: {} }
steps:
  - id: contacts
    call: crm GET /contacts
    paginate: { cursor: { param: cursor, from: .body.next }, items: .body.data }
  - transform: '$steps.contacts.items | map(.id)'
";
    let project = TestProject::new(ROOT, &[("sync", flow)]);
    let node = project.start(&env(&[("CRM_URL", crm.url())])).await;
    let run = run_manually(&node, "sync", json!({})).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    let expected: Vec<Value> = (0..30).map(|n| json!(n)).collect();
    assert_eq!(run.output, Some(Value::Array(expected)));
    assert_eq!(crm.request_count(), 10);
    let journal = node.engine.store().journal(run.id).await.unwrap();
    let summary = journal[0].request.as_ref().unwrap();
    assert_eq!(summary["pages"], 10, "{summary}");
    assert_eq!(summary["attempts"], 10, "{summary}");
    assert_eq!(summary["retries"], 0, "{summary}");
    assert_eq!(summary["status"], 200, "{summary}");
    assert_eq!(journal[0].output.as_ref().unwrap()["truncated"], false);
    node.stop().await.unwrap();
}

#[tokio::test]
async fn a_paginated_call_journals_its_pages_and_retries_apart() {
    let crm = MockUpstream::start().await;
    // The first request fails once; every page then answers.
    crm.script("GET", "/contacts", [Reply::status(503)]);
    serve_pages(&crm);
    let flow = "\
trigger: { manual: {} }
steps:
  - call: crm GET /contacts
    paginate: { cursor: { param: cursor, from: .body.next }, items: .body.data, max_pages: 3 }
";
    let root = format!("{ROOT}    retry: {{ attempts: 3, backoff: {{ min: 10ms, max: 10ms }} }}\n");
    let project = TestProject::new(&root, &[("sync", flow)]);
    let node = project.start(&env(&[("CRM_URL", crm.url())])).await;
    let run = run_manually(&node, "sync", json!({})).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    assert_eq!(crm.request_count(), 4);
    let journal = node.engine.store().journal(run.id).await.unwrap();
    let summary = journal[0].request.as_ref().unwrap();
    assert_eq!(summary["pages"], 3, "{summary}");
    assert_eq!(summary["attempts"], 4, "{summary}");
    assert_eq!(summary["retries"], 1, "{summary}");
    assert_eq!(summary["status"], 200, "{summary}");
    node.stop().await.unwrap();
}

#[tokio::test]
async fn the_page_cap_stops_early_with_a_recorded_warning() {
    let crm = MockUpstream::start().await;
    serve_pages(&crm);
    let flow = "\
trigger: { manual: {} }
steps:
  - call: crm GET /contacts
    paginate: { cursor: { from: .body.next }, items: .body.data, max_pages: 4 }
";
    let project = TestProject::new(ROOT, &[("sync", flow)]);
    let node = project.start(&env(&[("CRM_URL", crm.url())])).await;
    let run = run_manually(&node, "sync", json!({})).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    let output = run.output.unwrap();
    assert_eq!(output["items"].as_array().unwrap().len(), 12);
    assert_eq!(output["truncated"], true);
    assert!(
        output["warning"].as_str().unwrap().contains('4'),
        "{output}"
    );
    assert_eq!(crm.request_count(), 4);
    node.stop().await.unwrap();
}

#[tokio::test]
async fn graphql_steps_return_data_and_fail_on_errors() {
    let api = MockUpstream::start().await;
    api.route_fn("POST", "/graphql", |request| {
        let body = request.json.clone().unwrap_or_default();
        if body["variables"]["login"] == "ghost" {
            return Reply::json(
                200,
                json!({ "data": null, "errors": [{ "message": "no such user", "path": ["user"] }] }),
            );
        }
        Reply::json(200, json!({ "data": { "user": { "login": body["variables"]["login"] } } }))
    });
    let flow = "\
trigger: { manual: {} }
steps:
  - id: user
    graphql:
      connector: crm
      document: 'query($login: String!) { user(login: $login) { login } }'
      variables: '{login}'
  - transform: '$steps.user.user.login'
";
    let project = TestProject::new(ROOT, &[("who", flow)]);
    let node = project.start(&env(&[("CRM_URL", api.url())])).await;
    let run = run_manually(&node, "who", json!({ "login": "octo" })).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    assert_eq!(run.output, Some(json!("octo")));

    let run = run_manually(&node, "who", json!({ "login": "ghost" })).await;
    assert_eq!(run.status, RunStatus::Dead);
    assert_eq!(run.retries, 0, "GraphQL errors are not transient");
    let error = run.error.unwrap();
    assert!(error.contains("no such user"), "{error}");
    // The answer that carried the errors is journalled with its status.
    let journal = node.engine.store().journal(run.id).await.unwrap();
    let summary = journal[0].request.as_ref().unwrap();
    assert_eq!(summary["status"], 200, "{summary}");
    assert_eq!(summary["attempts"], 1, "{summary}");
    node.stop().await.unwrap();
}

/// Two tenants' calls through a connector limited to 1 call per second per
/// tenant: each tenant's two calls are a second apart, but the tenants do
/// not wait for each other.
#[tokio::test]
async fn rate_limit_keys_give_each_tenant_its_own_limit() {
    let crm = MockUpstream::start().await;
    crm.route("GET", "/contacts", Reply::json(200, json!([])));
    let root = "\
connectors:
  crm:
    url: \"${env:CRM_URL}\"
    dangerous_allow_private: true
    rate_limit: { requests: 1, per: 1s, key: '.tenant' }
";
    let flow = "\
trigger: { manual: {} }
steps:
  - for_each: '.calls'
    concurrency: 4
    call: crm GET /contacts
    query: '{tenant}'
";
    let project = TestProject::new(root, &[("fan", flow)]);
    let node = project.start(&env(&[("CRM_URL", crm.url())])).await;
    let calls = json!([{ "tenant": "a" }, { "tenant": "b" }, { "tenant": "a" }, { "tenant": "b" }]);
    let run = run_manually(&node, "fan", json!({ "calls": calls })).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    let requests = crm.requests();
    let at = |tenant: &str| -> Vec<std::time::Instant> {
        requests
            .iter()
            .filter(|r| r.query_param("tenant") == Some(tenant))
            .map(|r| r.received_at)
            .collect()
    };
    let (a, b) = (at("a"), at("b"));
    assert_eq!((a.len(), b.len()), (2, 2));
    assert!(
        a[1] - a[0] >= Duration::from_millis(900),
        "{:?}",
        a[1] - a[0]
    );
    assert!(
        b[1] - b[0] >= Duration::from_millis(900),
        "{:?}",
        b[1] - b[0]
    );
    let first_of_each = a[0].max(b[0]) - a[0].min(b[0]);
    assert!(
        first_of_each < Duration::from_millis(500),
        "tenant b waited for tenant a: {first_of_each:?}"
    );
    node.stop().await.unwrap();
}
