//! A node whose project keeps its store in PostgreSQL
//! (`store: {postgres: {url, schema}}`): runs are committed, executed and
//! journalled there, and `check` refuses a URL that cannot be one.

use patchbay_store::{RunFilter, RunStatus, Store};
use patchbay_testkit::{MockUpstream, Reply};
use serde_json::json;

use crate::support::{ORDER_FLOW, SHOP_CONNECTORS, Schema, TestProject, env, pg_url, run_manually};

#[tokio::test]
async fn a_node_on_postgres_commits_executes_and_journals_its_runs_there() {
    let payments = MockUpstream::start().await;
    payments.route(
        "POST",
        "/charges",
        Reply::json(201, json!({ "id": "ch_1" })),
    );
    let chat = MockUpstream::start().await;
    chat.route("POST", "/messages", Reply::json(200, json!({ "ok": true })));

    let schema = Schema::new();
    let root = format!("{SHOP_CONNECTORS}{}", schema.store_yaml());
    let project = TestProject::new(&root, &[("order", ORDER_FLOW)]);
    let node = project
        .start(&env(&[
            ("PAY_URL", payments.url()),
            ("CHAT_URL", chat.url()),
            ("PG_URL", pg_url()),
        ]))
        .await;
    let run = run_manually(&node, "order", json!({ "amount": 1200 })).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    node.stop().await.unwrap();

    // Read back by a store of its own: the run, its journal.
    let store = schema.open().await;
    let runs = store.list_runs(&RunFilter::default()).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].id, run.id);
    let journal = store.journal(run.id).await.unwrap();
    let steps: Vec<&str> = journal.iter().map(|e| e.step_id.as_str()).collect();
    assert_eq!(steps, ["charge", "notify"]);
    assert!(
        !project.path().join(".patchbay/patchbay.db").exists(),
        "no SQLite file"
    );
    store.close().await;
}

#[test]
fn check_refuses_a_store_url_that_is_not_postgres_or_hides_a_secret_and_an_empty_pool() {
    let project = TestProject::new(
        "store:\n  postgres:\n    url: \"mysql://db.example.com/patchbay\"\n",
        &[],
    );
    let output = crate::support::patchbay(&["check", project.path().to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("patchbay.yaml:3:10: `store.postgres.url` must be a URL such as `postgres://user:password@host:5432/database`"),
        "{stderr}"
    );

    let project = TestProject::new(
        "store:\n  postgres:\n    url: \"postgres://app:${secret:DB_PASSWORD}@db/patchbay\"\n",
        &[],
    );
    let output = crate::support::patchbay(&["check", project.path().to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("`store.postgres.url` cannot use `${secret:...}`"),
        "{stderr}"
    );

    // A pool of no connection, or one that never waits for one.
    let project = TestProject::new(
        "store:\n  postgres:\n    url: \"postgres://app@db/patchbay\"\n    max_connections: 0\n    acquire_timeout: 0s\n",
        &[],
    );
    let output = crate::support::patchbay(&["check", project.path().to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    for refused in [
        "`store.postgres.max_connections` must be at least 1",
        "`store.postgres.acquire_timeout` must be longer than 0s",
    ] {
        assert!(stderr.contains(refused), "{refused}: {stderr}");
    }
}
