//! Finished runs are deleted once older than `store.retention`; unfinished
//! ones are kept however old.

use std::time::Duration;

use patchbay_store::RunStatus;
use serde_json::json;

use crate::support::{TestProject, env, eventually, run_manually};

#[tokio::test]
async fn finished_runs_expire_after_the_retention() {
    let project = TestProject::new(
        "store:\n  retention: 1s\n",
        &[(
            "count",
            "trigger: { manual: {} }\nsteps:\n  - transform: '.n + 1'\n",
        )],
    );
    let node = project.start(&env(&[])).await;
    let store = node.engine.store().clone();
    let run = run_manually(&node, "count", json!({ "n": 1 })).await;
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(store.journal(run.id).await.unwrap().len(), 1);
    assert!(
        eventually(Duration::from_secs(10), || async {
            store.run(run.id).await.unwrap().is_none()
        })
        .await,
        "the finished run outlived its retention"
    );
    assert!(store.journal(run.id).await.unwrap().is_empty());
    node.stop().await.unwrap();
}
