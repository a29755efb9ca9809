//! A run accepted while every worker is busy is committed leased to this
//! node and waits in memory for the next free worker, instead of going
//! through the queue and a claim.

use std::time::Duration;

use patchbay_store::{RunId, RunStatus};
use patchbay_testkit::{MockUpstream, Reply};
use serde_json::json;

use crate::support::{TestProject, env, eventually, manual_event};

const ROOT: &str = "\
connectors:
  slow:
    url: \"${env:UP_URL}\"
    dangerous_allow_private: true
engine:
  workers: 1
";

const FLOW: &str = "\
trigger: { manual: {} }
steps:
  - call: slow GET /slow
";

fn event() -> patchbay_engine::Event {
    manual_event("slow", json!({}))
}

/// A node with one worker, busy with a first run whose call the upstream
/// answers after 400 ms; returns once that call has left.
async fn busy_node() -> (MockUpstream, TestProject, patchbay::Node, RunId) {
    let upstream = MockUpstream::start().await;
    upstream.route(
        "GET",
        "/slow",
        Reply::json(200, json!({})).with_delay(Duration::from_millis(400)),
    );
    let project = TestProject::new(ROOT, &[("slow", FLOW)]);
    let node = project.start(&env(&[("UP_URL", upstream.url())])).await;

    let first = node.engine.trigger(event()).await.unwrap().run_id();
    assert!(
        eventually(Duration::from_secs(5), || async {
            !upstream.requests().is_empty()
        })
        .await,
        "the first call never left"
    );
    (upstream, project, node, first)
}

#[tokio::test]
async fn a_run_accepted_while_the_worker_is_busy_waits_for_it_leased_to_this_node() {
    let (upstream, _project, node, first) = busy_node().await;
    let store = node.engine.store().clone();

    // The only worker is in the first run's call: the second run is
    // committed already leased to this node, not queued for a claim.
    let second = node.engine.trigger(event()).await.unwrap().run_id();
    let waiting = store.run(second).await.unwrap().unwrap();
    assert_eq!(waiting.status, RunStatus::Running, "{waiting:?}");
    let owner = store.run(first).await.unwrap().unwrap().lease_owner;
    assert!(owner.is_some());
    assert_eq!(waiting.lease_owner, owner);
    assert_eq!(waiting.attempts, 1);
    // It has not started: a crash now is not counted against it.
    assert_eq!(waiting.stalled_claims, 0);

    for run in [first, second] {
        let ended = node
            .engine
            .wait_for(run, Duration::from_secs(20))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ended.status, RunStatus::Succeeded, "{ended:?}");
        assert_eq!(ended.attempts, 1, "executed once, never claimed again");
    }
    assert_eq!(upstream.requests().len(), 2);
    node.stop().await.unwrap();
}

#[tokio::test]
async fn a_waiting_run_cancelled_before_its_turn_never_runs_a_step() {
    let (upstream, _project, node, first) = busy_node().await;
    let second = node.engine.trigger(event()).await.unwrap().run_id();
    node.engine.cancel(second).await.unwrap();

    let ended = node
        .engine
        .wait_for(first, Duration::from_secs(20))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended.status, RunStatus::Succeeded);
    // Time for the freed worker to take the cancelled run, had it been kept.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let second = node.engine.store().run(second).await.unwrap().unwrap();
    assert_eq!(second.status, RunStatus::Cancelled);
    assert_eq!(
        upstream.requests().len(),
        1,
        "the cancelled run made no call"
    );
    node.stop().await.unwrap();
}
