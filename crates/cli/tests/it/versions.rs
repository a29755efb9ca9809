//! Runs keep their configuration version: a run started before a reload
//! that renames its next step finishes on the steps it started with, while
//! a new run uses the new ones; a restart with a changed project too.

use std::time::Duration;

use patchbay_store::RunStatus;
use patchbay_testkit::{MockUpstream, Reply};
use serde_json::json;

use crate::support::{Patchbay, TestProject, eventually, patchbay_run, post_for_run, stored_runs};

fn root(upstream: &MockUpstream) -> String {
    format!(
        "connectors:\n  up:\n    url: {}\n    dangerous_allow_private: true\nengine:\n  lease: 2s\n  poll_interval: 200ms\n",
        upstream.url()
    )
}

fn flow(second: &str) -> String {
    format!(
        "\
trigger: {{ webhook: {{ path: /hooks/v }} }}
steps:
  - id: first
    call: up POST /first
  - id: {second}
    call: up POST /{second}
"
    )
}

async fn succeeded(project: &TestProject, ids: &[&String]) -> bool {
    let runs = stored_runs(project).await;
    ids.iter().all(|id| {
        runs.iter()
            .any(|r| &r.id.to_string() == *id && r.status == RunStatus::Succeeded)
    })
}

#[tokio::test]
async fn a_run_finishes_on_its_version_after_a_reload_and_a_restart() {
    let upstream = MockUpstream::start().await;
    upstream.route(
        "POST",
        "/first",
        Reply::json(200, json!({"ok": true})).with_delay(Duration::from_secs(1)),
    );
    for path in ["/second-a", "/second-b", "/second-c"] {
        upstream.route("POST", path, Reply::json(200, json!({"ok": true})));
    }
    let project = TestProject::new(&root(&upstream), &[("v", &flow("second-a"))]);
    let flow_file = project.path().join("flows/v.yaml");
    let log = project.path().join("patchbay.log");
    let node = Patchbay::spawn(patchbay_run(project.path(), &[]), &log);

    // Version A: the run is in its first step when B replaces it.
    let on_a = post_for_run(&node.base, "/hooks/v", json!({"n": 1})).await;
    let started = eventually(Duration::from_secs(10), || async {
        !upstream.requests_to("POST", "/first").is_empty()
    })
    .await;
    assert!(started, "the run on version A started");
    std::fs::write(&flow_file, flow("second-b")).unwrap();
    let reloaded = reqwest::Client::new()
        .post(format!("{}/api/v1/config/reload", node.base))
        .json(&json!({}))
        .send()
        .await
        .expect("reload sent");
    assert_eq!(
        reloaded.status().as_u16(),
        200,
        "{:?}",
        reloaded.text().await
    );
    let on_b = post_for_run(&node.base, "/hooks/v", json!({"n": 1})).await;
    let done = eventually(Duration::from_secs(20), || async {
        succeeded(&project, &[&on_a, &on_b]).await
    })
    .await;
    assert!(done, "both runs succeeded");
    assert_eq!(
        upstream.requests_to("POST", "/second-a").len(),
        1,
        "A's step ran once, for the run on A"
    );
    assert_eq!(
        upstream.requests_to("POST", "/second-b").len(),
        1,
        "B's step ran once, for the run on B"
    );

    // A restart with a changed project: the run on B, cut in its first
    // step, finishes on B's steps; C is only for new runs.
    let on_b_again = post_for_run(&node.base, "/hooks/v", json!({"n": 1})).await;
    let cut = eventually(Duration::from_secs(10), || async {
        upstream.requests_to("POST", "/first").len() >= 3
    })
    .await;
    assert!(cut, "the second run on B started");
    node.kill();
    std::fs::write(&flow_file, flow("second-c")).unwrap();
    let node = Patchbay::spawn(patchbay_run(project.path(), &[]), &log);
    let done = eventually(Duration::from_secs(20), || async {
        succeeded(&project, &[&on_b_again]).await
    })
    .await;
    node.terminate();
    assert!(done, "the run on B finished after the restart");
    assert_eq!(upstream.requests_to("POST", "/second-b").len(), 2);
    assert!(upstream.requests_to("POST", "/second-c").is_empty());
}
