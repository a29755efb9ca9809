//! Nodes on one PostgreSQL store wake each other: a run one node queues
//! starts on another at once, not at that node's next poll. One node only
//! takes webhooks (`--no-workers`), so every run it accepts is queued; the
//! other only works, and polls once an hour: only the store's `NOTIFY` can
//! wake it in time. Needs the PostgreSQL of `PATCHBAY_TEST_PG_URL`.

use std::time::{Duration, Instant};

use patchbay_store::RunStatus;
use patchbay_testkit::{MockUpstream, Reply};
use serde_json::json;

use crate::support::{Patchbay, Schema, TestProject, patchbay_run, pg_url};

const FLOW: &str = "\
trigger: { webhook: { path: /hooks/orders } }
steps:
  - call: payments POST /charges
    body: '.'
";

#[tokio::test]
async fn a_run_queued_by_one_node_starts_on_another_without_waiting_for_a_poll() {
    let payments = MockUpstream::start().await;
    payments.route(
        "POST",
        "/charges",
        Reply::json(201, json!({ "id": "ch_1" })),
    );
    let schema = Schema::new();
    let root = format!(
        "\
connectors:
  payments:
    url: \"${{env:PAYMENTS_URL}}\"
    dangerous_allow_private: true
engine: {{ poll_interval: 1h }}
{store}",
        store = schema.store_yaml()
    );
    let project = TestProject::new(&root, &[("orders", FLOW)]);
    let env = [("PG_URL", pg_url()), ("PAYMENTS_URL", payments.url())];
    let log = project.path().join("patchbay.log");
    let mut intake = patchbay_run(project.path(), &env);
    intake.arg("--no-workers");
    let intake = Patchbay::spawn(intake, &log);
    let mut worker = patchbay_run(project.path(), &env);
    worker.arg("--no-scheduler");
    let worker = Patchbay::spawn(worker, &log);
    // The worker claims once as it starts; from then on it polls hourly.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let store = schema.open().await;
    let client = reqwest::Client::new();
    let mut slowest = Duration::ZERO;
    for order in 0..5 {
        let sent = Instant::now();
        let answer = client
            .post(format!("{}/hooks/orders", intake.base))
            .json(&json!({ "order": order }))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 202);
        let body: serde_json::Value = answer.json().await.unwrap();
        let run_id = body["run_id"].as_str().unwrap().parse().unwrap();
        loop {
            let run = patchbay_store::Store::run(&store, run_id).await.unwrap();
            if run
                .as_ref()
                .is_some_and(|run| run.status == RunStatus::Succeeded)
            {
                break;
            }
            assert!(
                sent.elapsed() < Duration::from_secs(10),
                "run {run_id} of order {order} not done 10 s after it was queued: {run:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        slowest = slowest.max(sent.elapsed());
    }
    println!("slowest run from webhook to end on the other node: {slowest:?}");
    assert!(
        slowest < Duration::from_secs(5),
        "{slowest:?}: woken by a poll, not a notification"
    );
    assert_eq!(payments.request_count(), 5);
    store.close().await;
    intake.terminate();
    worker.terminate();
}
