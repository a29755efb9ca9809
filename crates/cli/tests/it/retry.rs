//! A step's call is retried through transient failures with the same
//! idempotency key, and the journal records the attempts.

use std::time::Duration;

use patchbay_store::RunStatus;
use patchbay_testkit::{MockUpstream, Reply};
use serde_json::{Value, json};

use crate::support::{TestProject, env, post_json};

#[tokio::test]
async fn a_flaky_upstream_is_retried_with_one_idempotency_key() {
    let payments = MockUpstream::start().await;
    payments.route(
        "POST",
        "/charges",
        Reply::json(201, json!({ "id": "ch_1" })),
    );
    payments.script("POST", "/charges", [Reply::status(503), Reply::status(503)]);
    let project = TestProject::new(
        "\
connectors:
  payments:
    url: \"${env:PAY_URL}\"
    dangerous_allow_private: true
    retry: { attempts: 3, backoff: { min: 20ms, max: 1s } }
",
        &[(
            "charge",
            "trigger: { webhook: { path: /hooks/charge } }\nsteps:\n  - id: charge\n    call: payments POST /charges\n    body: '{amount}'\n",
        )],
    );
    let node = project.start(&env(&[("PAY_URL", payments.url())])).await;
    let response = post_json(
        &format!("http://{}/hooks/charge", node.address),
        &json!({ "amount": 100 }),
    )
    .await;
    let body: Value = response.json().await.unwrap();
    let run_id: uuid::Uuid = body["run_id"].as_str().unwrap().parse().unwrap();
    let run = node
        .engine
        .wait_for(run_id, Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);

    let keys: Vec<_> = payments
        .requests()
        .iter()
        .map(|r| r.header("idempotency-key").map(str::to_string))
        .collect();
    assert_eq!(keys, vec![Some(format!("{run_id}:charge")); 3]);
    let journal = node.engine.store().journal(run_id).await.unwrap();
    assert_eq!(journal[0].request.as_ref().unwrap()["attempts"], 3);
    assert_eq!(journal[0].request.as_ref().unwrap()["status"], 201);
    node.stop().await.unwrap();
}
