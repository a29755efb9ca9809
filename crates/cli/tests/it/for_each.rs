//! `for_each` runs items with bounded concurrency and keeps their order.

use std::time::Duration;

use patchbay_store::{RunStatus, StepStatus};
use patchbay_testkit::{MockUpstream, Reply};
use serde_json::{Value, json};

use crate::support::{TestProject, env, run_manually};

#[tokio::test]
async fn for_each_makes_one_call_per_item_with_bounded_concurrency_in_order() {
    let erp = MockUpstream::start().await;
    // Replies in varying time so that completion order differs from item order.
    erp.route_fn("PUT", "/items/{n}", |req| {
        let n: u64 = req.param("n").and_then(|n| n.parse().ok()).unwrap_or(0);
        Reply::json(200, json!({ "n": n, "double": n * 2 }))
            .with_delay(Duration::from_millis(5 + (n * 7) % 20))
    });
    let project = TestProject::new(
        "connectors:\n  erp: { url: \"${env:ERP_URL}\", dangerous_allow_private: true }\n",
        &[(
            "fan",
            "\
trigger: { manual: {} }
steps:
  - id: items
    transform: '[range(0; 100)]'
  - id: put
    for_each: '$steps.items'
    concurrency: 4
    call: erp PUT /items/{.}
    body: '{n: .}'
  - id: doubles
    transform: '[$steps.put[].body.double]'
",
        )],
    );
    let env = env(&[("ERP_URL", erp.url())]);
    let node = project.start(&env).await;
    let run = run_manually(&node, "fan", json!({})).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);

    assert_eq!(erp.request_count(), 100);
    assert!(
        erp.max_in_flight() <= 4,
        "max in flight {}",
        erp.max_in_flight()
    );
    assert_eq!(erp.max_in_flight(), 4, "concurrency 4 was never reached");
    let expected: Vec<Value> = (0..100).map(|n| json!(n * 2)).collect();
    assert_eq!(run.output, Some(Value::Array(expected)));

    let journal = node.engine.store().journal(run.id).await.unwrap();
    let items: Vec<_> = journal
        .iter()
        .filter(|e| e.step_id == "put" && e.item.is_some())
        .collect();
    assert_eq!(items.len(), 100);
    assert!(items.iter().all(|e| e.status == StepStatus::Succeeded));
    node.stop().await.unwrap();
}

#[tokio::test]
async fn for_each_over_something_else_than_an_array_fails_the_step() {
    let project = TestProject::new(
        "",
        &[(
            "fan",
            "trigger: { manual: {} }\nsteps:\n  - id: each\n    for_each: '.items'\n    transform: '.'\n",
        )],
    );
    let node = project.start(&env(&[])).await;
    let run = run_manually(&node, "fan", json!({ "items": { "a": 1 } })).await;
    assert_eq!(run.status, RunStatus::Dead);
    let error = run.error.unwrap();
    assert!(
        error.contains("`for_each` must produce an array, got an object"),
        "{error}"
    );
    let journal = node.engine.store().journal(run.id).await.unwrap();
    assert_eq!(journal.len(), 1);
    assert_eq!(journal[0].status, StepStatus::Failed);
    node.stop().await.unwrap();
}
