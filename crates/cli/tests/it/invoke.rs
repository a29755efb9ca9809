//! `patchbay invoke` runs a flow by hand; `patchbay runs list|show` read it back.

use std::process::Command;

use patchbay_testkit::{MockUpstream, Reply};
use serde_json::{Value, json};

use crate::support::{TestProject, binary};

// Multi-threaded: the blocking child-process calls below must not starve the
// mock upstream, which runs on this test's runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_runs_a_flow_and_runs_commands_show_it() {
    let api = MockUpstream::start().await;
    api.route_fn("POST", "/echo", |req| {
        Reply::json(200, json!({ "got": req.json.clone() }))
    });
    let project = TestProject::new(
        "connectors:\n  api: { url: \"${env:API_URL}\", dangerous_allow_private: true }\n",
        &[
            (
                "echo",
                "trigger: { manual: {} }\nsteps:\n  - id: send\n    call: api POST /echo\n    body: '{n: .n}'\n",
            ),
            (
                "fail",
                "trigger: { manual: {} }\nsteps:\n  - transform: '.missing | error'\n",
            ),
        ],
    );
    let input = project.path().join("event.json");
    std::fs::write(&input, r#"{"n": 41}"#).unwrap();
    let patchbay = |args: &[&str]| {
        Command::new(binary())
            .args(args)
            .env("API_URL", api.url())
            .output()
            .unwrap()
    };
    let dir = project.path().to_str().unwrap();

    let output = patchbay(&[
        "invoke",
        "echo",
        "--input",
        input.to_str().unwrap(),
        "--project",
        dir,
    ]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let shown: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(shown["run"]["status"], "succeeded");
    assert_eq!(shown["run"]["trigger"], "manual");
    assert_eq!(
        shown["journal"][0]["output"]["body"],
        json!({ "got": { "n": 41 } })
    );
    let id = shown["run"]["id"].as_str().unwrap().to_string();

    let failed = patchbay(&["invoke", "fail", "--project", dir]);
    assert_eq!(failed.status.code(), Some(1));

    let list = patchbay(&["runs", "list", "--project", dir, "--json"]);
    assert_eq!(list.status.code(), Some(0));
    let runs: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(runs["items"].as_array().unwrap().len(), 2);
    assert_eq!(runs["next_cursor"], Value::Null);
    let only_failed = patchbay(&[
        "runs",
        "list",
        "--project",
        dir,
        "--status",
        "dead",
        "--json",
    ]);
    let only_failed: Value = serde_json::from_slice(&only_failed.stdout).unwrap();
    assert_eq!(only_failed["items"].as_array().unwrap().len(), 1);
    assert_eq!(only_failed["items"][0]["flow"], "fail");

    let table = patchbay(&["runs", "list", "--project", dir]);
    assert!(String::from_utf8_lossy(&table.stdout).contains(&id));

    let rendered = patchbay(&["runs", "show", &id, "--project", dir]);
    assert_eq!(rendered.status.code(), Some(0));
    let rendered = String::from_utf8_lossy(&rendered.stdout);
    assert!(rendered.contains("#1 send"), "{rendered}");
    let show = patchbay(&["runs", "show", &id, "--project", dir, "--json"]);
    assert_eq!(show.status.code(), Some(0));
    let show: Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(show["run"]["id"], id.as_str());
    assert_eq!(show["journal"][0]["step_id"], "send");

    let bad_status = patchbay(&["runs", "list", "--project", dir, "--status", "exploded"]);
    assert_eq!(bad_status.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad_status.stderr).contains("unknown status `exploded`"));
}

#[tokio::test]
async fn misspelt_flow_and_connector_names_get_suggestions() {
    let flow = "trigger: { manual: {} }\nsteps:\n  - transform: .\n";
    let root =
        "connectors:\n  catalog:\n    url: http://127.0.0.1:9\n    dangerous_allow_private: true\n";
    let project = crate::support::TestProject::new(root, &[("new-order", flow)]);
    let output = crate::support::patchbay(&[
        "invoke",
        "new-ordr",
        "--project",
        project.path().to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown flow `new-ordr` — did you mean `new-order`?"),
        "{stderr}"
    );

    let node = project.start(&crate::support::env(&[])).await;
    let response = reqwest::get(format!("http://{}/api/v1/flows/new-ordr", node.address))
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body["error"]["message"], "unknown flow `new-ordr` — did you mean `new-order`?",
        "{body}"
    );
    let response = reqwest::get(format!("http://{}/api/v1/connectors/catalgo", node.address))
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body["error"]["message"], "unknown connector `catalgo` — did you mean `catalog`?",
        "{body}"
    );
    node.stop().await.unwrap();
}
