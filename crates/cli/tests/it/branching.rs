//! Branching and durable waits through the real binary: a `switch` sends
//! each event shape down its branch, and a node killed inside a branch
//! resumes in the same branch without repeating its completed calls; a run
//! waiting on a `wait` step survives a kill and goes on at its due time.

use std::time::Duration;

use futures::StreamExt;
use patchbay_store::{RunStatus, StepStatus};
use patchbay_testkit::{MockUpstream, Reply};
use serde_json::json;

use crate::support::{Patchbay, TestProject, eventually, patchbay_run, post_for_run};

fn root(upstream: &MockUpstream) -> String {
    format!(
        "connectors:\n  up:\n    url: {}\n    dangerous_allow_private: true\n    idempotency_header: Idempotency-Key\nengine:\n  lease: 2s\n  poll_interval: 200ms\n",
        upstream.url()
    )
}

const ROUTE_FLOW: &str = "\
trigger: { webhook: { path: /hooks/route } }
steps:
  - id: route
    switch:
      cases:
        - name: refund
          when: '.type == \"refund\"'
          steps:
            - call: up POST /refunds
              body: '{id: .id}'
            - call: up POST /notify
              body: '{id: .id}'
        - name: order
          when: '.type == \"order\"'
          steps:
            - call: up POST /orders
              body: '{id: .id}'
      default:
        - call: up POST /other
          body: '{id: .id}'
";

async fn store(project: &TestProject) -> Box<dyn patchbay_store::Store> {
    project.open_store().await
}

async fn run_status(project: &TestProject, id: &str) -> Option<RunStatus> {
    let store = store(project).await;
    let run = store.run(id.parse().ok()?).await.ok().flatten();
    run.map(|r| r.status)
}

#[tokio::test]
async fn a_switch_takes_each_branch_and_a_killed_node_resumes_in_the_same_one() {
    let upstream = MockUpstream::start().await;
    for path in ["/refunds", "/orders", "/other"] {
        upstream.route("POST", path, Reply::json(200, json!({"ok": true})));
    }
    // Slow enough for the node to be killed while the call is out.
    upstream.route(
        "POST",
        "/notify",
        Reply::json(200, json!({"ok": true})).with_delay(Duration::from_secs(2)),
    );
    upstream.idempotent("POST", "/notify");
    let project = TestProject::new(&root(&upstream), &[("route", ROUTE_FLOW)]);
    let log = project.path().join("patchbay.log");
    let node = Patchbay::spawn(patchbay_run(project.path(), &[]), &log);

    let order = post_for_run(
        &node.base,
        "/hooks/route",
        json!({"type": "order", "id": 1}),
    )
    .await;
    let other = post_for_run(&node.base, "/hooks/route", json!({"type": "gift", "id": 2})).await;
    let refund = post_for_run(
        &node.base,
        "/hooks/route",
        json!({"type": "refund", "id": 3}),
    )
    .await;
    let notified = eventually(Duration::from_secs(20), || async {
        !upstream.requests_to("POST", "/notify").is_empty()
    })
    .await;
    assert!(notified, "the refund branch reached its second call");
    node.kill();

    let node = Patchbay::spawn(patchbay_run(project.path(), &[]), &log);
    let done = eventually(Duration::from_secs(30), || async {
        let mut all = true;
        for id in [&order, &other, &refund] {
            all &= run_status(&project, id).await == Some(RunStatus::Succeeded);
        }
        all
    })
    .await;
    node.terminate();
    assert!(done, "every run succeeded after the restart");

    // Each branch's calls went to their own endpoint, once; the call cut
    // by the kill was sent again with the same key and applied once.
    assert_eq!(upstream.requests_to("POST", "/orders").len(), 1);
    assert_eq!(upstream.requests_to("POST", "/other").len(), 1);
    assert_eq!(upstream.requests_to("POST", "/refunds").len(), 1);
    let notify = upstream.requests_to("POST", "/notify");
    let keys: std::collections::BTreeSet<_> = notify
        .iter()
        .filter_map(|r| r.header("idempotency-key").map(str::to_string))
        .collect();
    assert_eq!(keys.len(), 1, "one key for the repeated call: {keys:?}");
    assert_eq!(upstream.side_effects(keys.iter().next().unwrap()), 1);

    let store = store(&project).await;
    let journal = store.journal(refund.parse().unwrap()).await.unwrap();
    // The journal as `runs show` lists it, one line per entry: the run's
    // attempt, step, status, and what steered the run (times and upstream
    // headers left out). The cut call appears once per attempt.
    let lines: Vec<String> = journal
        .iter()
        .map(|e| {
            let steer = match (&e.output, e.step_id.as_str()) {
                (Some(output), "route") => output.to_string(),
                (Some(output), _) => output
                    .get("status")
                    .map(|s| format!("status {s}"))
                    .unwrap_or_default(),
                (None, _) => e.error_class.clone().unwrap_or_default(),
            };
            format!("#{} {} {} {steer}", e.attempt, e.step_id, e.status.as_str())
        })
        .collect();
    insta::assert_snapshot!(lines.join("\n"));
    let decisions: Vec<_> = journal.iter().filter(|e| e.step_id == "route").collect();
    assert_eq!(
        decisions.len(),
        1,
        "the branch was chosen once: {journal:?}"
    );
    assert_eq!(decisions[0].output, Some(json!({"branch": "refund"})));
    let refunds: Vec<_> = journal
        .iter()
        .filter(|e| e.step_id == "route-refund-1")
        .collect();
    assert_eq!(refunds.len(), 1, "the completed call was not repeated");
    assert!(
        journal
            .iter()
            .any(|e| e.step_id == "route-refund-2" && e.status == StepStatus::Succeeded)
    );
}

const WAIT_FLOW: &str = "\
trigger: { webhook: { path: /hooks/remind } }
steps:
  - wait: 5s
  - call: up POST /remind
    body: '{id: .id}'
";

/// The instant a run's `wait` step journalled, once it has.
async fn waiting_until(project: &TestProject, id: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let store = store(project).await;
    let journal = store.journal(id.parse().ok()?).await.ok()?;
    let until = journal
        .iter()
        .find(|e| e.step_id == "step-1")?
        .output
        .clone()?;
    chrono::DateTime::parse_from_rfc3339(until["until"].as_str()?)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

#[tokio::test]
async fn a_waiting_run_survives_a_kill_and_goes_on_at_its_due_time() {
    let upstream = MockUpstream::start().await;
    upstream.route("POST", "/remind", Reply::json(200, json!({"ok": true})));
    let project = TestProject::new(&root(&upstream), &[("remind", WAIT_FLOW)]);
    let log = project.path().join("patchbay.log");
    let node = Patchbay::spawn(patchbay_run(project.path(), &[]), &log);
    let run = post_for_run(&node.base, "/hooks/remind", json!({"id": 7})).await;
    // The wait is journalled, then the run gives its worker back: queued.
    let waiting = eventually(Duration::from_secs(4), || async {
        waiting_until(&project, &run).await.is_some()
            && run_status(&project, &run).await == Some(RunStatus::Queued)
    })
    .await;
    assert!(waiting, "the run waits, queued");
    let due = waiting_until(&project, &run)
        .await
        .expect("the wait's instant");
    node.kill();
    let node = Patchbay::spawn(patchbay_run(project.path(), &[]), &log);
    let called = eventually(Duration::from_secs(15), || async {
        !upstream.requests_to("POST", "/remind").is_empty()
    })
    .await;
    let lag = chrono::Utc::now() - due;
    let done = eventually(Duration::from_secs(5), || async {
        run_status(&project, &run).await == Some(RunStatus::Succeeded)
    })
    .await;
    node.terminate();
    assert!(called && done, "the run went on after the restart");
    assert!(
        lag >= chrono::Duration::zero() && lag < chrono::Duration::milliseconds(1000),
        "the call came {lag:?} after the wait's due time"
    );
    assert_eq!(upstream.requests_to("POST", "/remind").len(), 1);
}

const PARENT_FLOW: &str = "\
trigger: { webhook: { path: /hooks/parent } }
steps:
  - id: child
    run_flow: enrich
    input: '{id: .id}'
  - transform: '{parent: .id, child: $steps.child}'
";

const CHILD_FLOW: &str = "\
trigger: { manual: {} }
steps:
  - call: up POST /enrich
    body: '{id: .id}'
  - transform: '{enriched: .id}'
";

#[tokio::test]
async fn a_parent_waits_for_its_child_across_a_kill_and_one_child_exists() {
    let upstream = MockUpstream::start().await;
    upstream.route(
        "POST",
        "/enrich",
        Reply::json(200, json!({"ok": true})).with_delay(Duration::from_secs(2)),
    );
    let project = TestProject::new(
        &root(&upstream),
        &[("parent", PARENT_FLOW), ("enrich", CHILD_FLOW)],
    );
    let log = project.path().join("patchbay.log");
    let node = Patchbay::spawn(patchbay_run(project.path(), &[]), &log);
    let parent = post_for_run(&node.base, "/hooks/parent", json!({"id": 5})).await;
    let calling = eventually(Duration::from_secs(20), || async {
        !upstream.requests_to("POST", "/enrich").is_empty()
    })
    .await;
    assert!(calling, "the child run reached its call");
    node.kill();

    let node = Patchbay::spawn(patchbay_run(project.path(), &[]), &log);
    let done = eventually(Duration::from_secs(30), || async {
        run_status(&project, &parent).await == Some(RunStatus::Succeeded)
    })
    .await;
    node.terminate();
    assert!(done, "the parent finished after the restart");

    let runs = crate::support::stored_runs(&project).await;
    let children: Vec<_> = runs.iter().filter(|r| r.flow == "enrich").collect();
    assert_eq!(children.len(), 1, "exactly one child run: {children:?}");
    assert_eq!(
        children[0].parent.map(|p| p.to_string()),
        Some(parent.clone())
    );
    let parent_run = runs.iter().find(|r| r.id.to_string() == parent).unwrap();
    assert_eq!(
        parent_run.output,
        Some(json!({"parent": 5, "child": {"enriched": 5}}))
    );
}

const LONG_WAIT_FLOW: &str = "\
trigger: { webhook: { path: /hooks/later } }
steps:
  - wait: 1h
  - transform: '.'
";

const NOW_FLOW: &str = "\
trigger: { webhook: { path: /hooks/now } }
steps:
  - transform: '{done: true}'
";

/// Waiting runs cost a row each, no worker and no task: 10,000 of them
/// leave every worker free and add little memory.
#[tokio::test]
async fn ten_thousand_waiting_runs_hold_no_worker_and_little_memory() {
    const RUNS: usize = 10_000;
    let upstream = MockUpstream::start().await;
    let project = TestProject::new(
        &root(&upstream),
        &[("later", LONG_WAIT_FLOW), ("now", NOW_FLOW)],
    );
    let log = project.path().join("patchbay.log");
    let node = Patchbay::spawn(patchbay_run(project.path(), &[]), &log);
    let client = reqwest::Client::new();
    // Warm up the paths a run takes, so the baseline includes them.
    post_for_run(&node.base, "/hooks/now", json!({})).await;
    let (before, _) = crate::support::memory_kib(node.pid()).expect("/proc is readable");

    let base = node.base.clone();
    futures::stream::iter(0..RUNS)
        .map(|n| {
            let client = client.clone();
            let url = format!("{base}/hooks/later");
            async move {
                let status = client
                    .post(url)
                    .json(&json!({ "n": n }))
                    .send()
                    .await
                    .expect("webhook sent")
                    .status();
                assert_eq!(status.as_u16(), 202);
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
    // Every run reached its wait and gave its worker back.
    let metrics = || async {
        reqwest::get(format!("{}/metrics", node.base))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text")
    };
    let suspended = eventually(Duration::from_secs(120), || async {
        let store = store(&project).await;
        let depth = store.queue_depth().await.expect("queue depth");
        depth.running == 0 && depth.ready == 0 && depth.delayed as usize == RUNS
    })
    .await;
    assert!(
        suspended,
        "all {RUNS} runs wait, queued for later:\n{}",
        metrics().await
    );
    let (after, _) = crate::support::memory_kib(node.pid()).expect("/proc is readable");

    // Every worker is free: a new event runs at once.
    let quick = post_for_run(&node.base, "/hooks/now", json!({})).await;
    let ran = eventually(Duration::from_secs(5), || async {
        run_status(&project, &quick).await == Some(RunStatus::Succeeded)
    })
    .await;
    node.terminate();
    assert!(ran, "a new run was not held up by the waiting ones");
    let grown_mib = after.saturating_sub(before) / 1024;
    eprintln!("{RUNS} waiting runs: RSS {before} KiB before, {after} KiB after (+{grown_mib} MiB)");
    assert!(
        grown_mib < 50,
        "{RUNS} waiting runs grew the node by {grown_mib} MiB"
    );
}

/// The management API describes a `switch` with its branches and a
/// `when`, as compiled.
#[tokio::test]
async fn the_api_shows_a_switch_with_its_branches() {
    let upstream = MockUpstream::start().await;
    let project = TestProject::new(&root(&upstream), &[("route", ROUTE_FLOW)]);
    let node = project.start(&crate::support::env(&[])).await;
    let mut detail =
        crate::support::get_json(&format!("http://{}/api/v1/flows/route", node.address)).await;
    detail["config_version"] = json!("[version]");
    insta::assert_snapshot!(serde_json::to_string_pretty(&detail).unwrap());
}
