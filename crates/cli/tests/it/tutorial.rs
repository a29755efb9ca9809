//! The tutorial's projects work as the README says: its `order-events` flow
//! routes a return down its branch (looking the product up in the catalog
//! and adding the refund to the flow's state) and leaves other events alone.

use patchbay_store::RunStatus;
use patchbay_testkit::{MockUpstream, Reply};
use serde_json::json;

use crate::support::{TestProject, env, run_manually};

const ORDER_EVENTS: &str = include_str!("../../../../examples/tutorial/flows/order-events.yaml");

#[tokio::test]
async fn the_tutorial_routes_a_return_down_its_branch() {
    let catalog = MockUpstream::start().await;
    catalog.route(
        "GET",
        "/products/lamp.json",
        Reply::json(
            200,
            json!({"sku": "lamp", "name": "Desk lamp", "price_cents": 2490}),
        ),
    );
    // The tutorial's connector, pointed at the mock rather than port 9000.
    let root = include_str!("../../../../examples/tutorial/patchbay.yaml")
        .replace("http://127.0.0.1:9000", &catalog.url());
    let project = TestProject::new(&root, &[("order-events", ORDER_EVENTS)]);
    let node = project.start(&env(&[])).await;

    let returned = run_manually(
        &node,
        "order-events",
        json!({"type": "return", "order_id": "A-1001", "sku": "lamp", "quantity": 2}),
    )
    .await;
    assert_eq!(
        returned.status,
        RunStatus::Succeeded,
        "{:?}",
        returned.error
    );
    let journal = node.engine.store().journal(returned.id).await.unwrap();
    let route = journal.iter().find(|e| e.step_id == "route").unwrap();
    assert_eq!(route.output, Some(json!({"branch": "return"})));
    assert_eq!(
        node.engine
            .store()
            .flow_state("order-events")
            .await
            .unwrap(),
        json!({"refunds_due": 4980})
    );

    let other = run_manually(&node, "order-events", json!({"type": "lost"})).await;
    assert_eq!(other.status, RunStatus::Succeeded);
    let journal = node.engine.store().journal(other.id).await.unwrap();
    let steps: Vec<(&str, &str)> = journal
        .iter()
        .map(|e| (e.step_id.as_str(), e.status.as_str()))
        .collect();
    assert_eq!(
        steps,
        vec![
            ("route", "succeeded"),
            ("route-default-1", "succeeded"),
            ("step-2", "skipped"),
        ]
    );
    assert_eq!(catalog.requests_to("GET", "/products/lamp.json").len(), 1);
}
