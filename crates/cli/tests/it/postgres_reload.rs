//! A reload is the cluster's: reloading one node of a PostgreSQL store
//! makes the others reload their files too, at their next heartbeat, and
//! new runs on every node then follow the new flows. Needs the PostgreSQL of
//! `PATCHBAY_TEST_PG_URL`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Patchbay, Schema, TestProject, get_json, patchbay_run, pg_url, post_json};

const V1: &str = "\
trigger: { webhook: { path: /hooks/greet, mode: sync } }
steps:
  - respond: { body: '{greeting: \"hello\"}' }
";

const V2: &str = "\
trigger: { webhook: { path: /hooks/greet, mode: sync } }
steps:
  - respond: { body: '{greeting: \"bonjour\"}' }
";

async fn greeting(node: &Patchbay) -> Value {
    post_json(&format!("{}/hooks/greet", node.base), &json!({}))
        .await
        .json::<Value>()
        .await
        .unwrap()["greeting"]
        .clone()
}

#[tokio::test]
async fn reloading_one_node_reloads_the_others() {
    let schema = Schema::new();
    let project = TestProject::new(&schema.store_yaml(), &[("greet", V1)]);
    let env = [("PG_URL", pg_url())];
    let log = project.path().join("patchbay.log");
    let a = Patchbay::spawn(patchbay_run(project.path(), &env), &log);
    let b = Patchbay::spawn(patchbay_run(project.path(), &env), &log);
    assert_eq!(greeting(&a).await, "hello");
    assert_eq!(greeting(&b).await, "hello");
    let before = get_json(&format!("{}/api/v1/config", b.base)).await["version"].clone();

    // The new flow is deployed to both nodes (here: their one folder), and
    // one node is reloaded.
    std::fs::write(project.path().join("flows/greet.yaml"), V2).unwrap();
    let reloaded = post_json(&format!("{}/api/v1/config/reload", a.base), &json!({})).await;
    assert_eq!(reloaded.status(), 200);
    let reloaded: Value = reloaded.json().await.unwrap();
    assert_ne!(reloaded["version"], before, "{reloaded}");
    assert_eq!(greeting(&a).await, "bonjour");

    // The other follows within a few heartbeats.
    let started = Instant::now();
    loop {
        let version = get_json(&format!("{}/api/v1/config", b.base)).await["version"].clone();
        if version == reloaded["version"] {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the other node still runs {version} 15 s after the reload"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "the other node reloaded {:?} after the first",
        started.elapsed()
    );
    assert_eq!(greeting(&b).await, "bonjour");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.contains("another node reloaded its configuration; reloading"),
        "{text}"
    );
    a.terminate();
    b.terminate();
}
