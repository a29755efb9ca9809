//! A flow's picture (`GET /api/v1/flows/{flow}/graph`): the SVG of its
//! trigger, steps, branches, fallbacks and fan-outs (snapshot), each
//! step's attempts of the last hour, and a run's path marked on it.

use std::time::Duration;

use patchbay_testkit::{MockUpstream, Reply};
use serde_json::{Value, json};

use crate::support::{Patchbay, TestProject, eventually, patchbay_run};

const ROOT: &str = "\
connectors:
  crm:
    url: ${env:CRM_URL}
    dangerous_allow_private: true
    circuit_breaker: off
";

/// Every shape a flow can take: a fallback, a switch with an empty
/// default, a `for_each`, a step after the branches.
const FLOW: &str = "\
trigger: { manual: {} }
steps:
  - id: fetch
    call: crm GET /contacts
    on_error:
      fallback:
        - id: cached
          transform: '{contacts: []}'
  - id: route
    switch:
      cases:
        - name: many
          when: '($steps.fetch.body.contacts | length) > 1'
          steps:
            - id: each
              for_each: '$steps.fetch.body.contacts'
              transform: '{name: .item.name}'
            - id: push
              call: crm POST /bulk
      default: []
  - id: done
    transform: '{ok: true}'
";

async fn get(base: &str, path: &str) -> reqwest::Response {
    reqwest::get(format!("{base}{path}")).await.unwrap()
}

/// The mark class of each step in a picture: `(step, class)`.
fn marks(svg: &str) -> Vec<(String, String)> {
    svg.split("<g class=\"node ")
        .skip(1)
        .filter_map(|node| {
            let classes = &node[..node.find('"')?];
            let step = node.split("data-step=\"").nth(1)?;
            let step = &step[..step.find('"')?];
            let mark = classes
                .split(' ')
                .find_map(|c| c.strip_prefix("mark-"))
                .unwrap_or("none");
            Some((step.to_string(), mark.to_string()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_is_drawn_with_its_branches_counts_and_a_runs_path() {
    let crm = MockUpstream::start().await;
    crm.route(
        "GET",
        "/contacts",
        Reply::json(
            200,
            json!({ "contacts": [{ "name": "Ada" }, { "name": "Grace" }] }),
        ),
    );
    crm.route("POST", "/bulk", Reply::json(400, json!({ "error": "no" })));
    let project = TestProject::new(ROOT, &[("sync", FLOW)]);
    let log = project.path().join("patchbay.log");
    let node = Patchbay::spawn(
        patchbay_run(project.path(), &[("CRM_URL", crm.url())]),
        &log,
    );
    let base = node.base.clone();

    let picture = get(&base, "/api/v1/flows/sync/graph").await;
    assert_eq!(picture.status(), 200);
    assert_eq!(
        picture.headers()["content-type"],
        "image/svg+xml; charset=utf-8"
    );
    let svg = picture.text().await.unwrap();
    insta::assert_snapshot!("flow_graph", svg.replace("><", ">\n<"));

    // A run that dies at `push`: fetch done, the for_each done, push
    // failed, `cached` (the fallback) and `done` never reached.
    let started: Value = reqwest::Client::new()
        .post(format!("{base}/api/v1/flows/sync/runs"))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = started["run_id"].as_str().unwrap().to_string();
    assert!(
        eventually(Duration::from_secs(10), || async {
            let run: Value = get(&base, &format!("/api/v1/runs/{id}"))
                .await
                .json()
                .await
                .unwrap();
            run["run"]["status"] == "dead"
        })
        .await,
        "the run did not die"
    );
    let path = get(&base, &format!("/api/v1/flows/sync/graph?run={id}"))
        .await
        .text()
        .await
        .unwrap();
    let mut marked = marks(&path);
    marked.sort();
    assert_eq!(
        marked,
        [
            ("cached", "not-reached"),
            ("done", "not-reached"),
            ("each", "done"),
            ("fetch", "done"),
            ("push", "failed"),
            ("route", "done"),
        ]
        .map(|(s, m)| (s.to_string(), m.to_string()))
        .to_vec(),
        "{path}"
    );

    // Without a run: the last hour's attempts on each step.
    let counted = get(&base, "/api/v1/flows/sync/graph")
        .await
        .text()
        .await
        .unwrap();
    assert!(counted.contains("last hour: 1 ok<"), "{counted}");
    assert!(
        counted.contains("last hour: 0 ok · 1 failed (100%)"),
        "{counted}"
    );
    assert!(counted.contains("has-failures"), "{counted}");

    // Mistakes are named.
    let unknown = get(&base, "/api/v1/flows/synk/graph").await;
    assert_eq!(unknown.status(), 404);
    let body: Value = unknown.json().await.unwrap();
    assert!(
        body["error"]["message"].as_str().unwrap().contains("sync"),
        "{body}"
    );
    let bad = get(&base, "/api/v1/flows/sync/graph?run=nope").await;
    assert_eq!(bad.status(), 400);
    node.stop_cleanly();
}
