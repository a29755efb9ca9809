//! Outgoing webhooks (`deliver`) as receivers see them: each named `sign`
//! scheme verifies with that scheme's official library (the Python
//! `standardwebhooks` and `stripe` packages, installed in a virtualenv by
//! `scripts/setup-verifiers`; GitHub's check as its documentation writes
//! it), and a tampered body does not. The schedule of attempts and the
//! disabling of a dead endpoint are tested under paused time in
//! `crates/engine/tests/time.rs`.
//!
//! Without Python or its package index the test fails under `CI=true` and
//! is skipped, saying why, elsewhere.

use std::path::{Path, PathBuf};
use std::process::Command;

use patchbay_testkit::{MockUpstream, Reply};
use serde_json::{Value, json};

use crate::support::{TestProject, binary};

const STANDARD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const STRIPE_SECRET: &str = "whsec_test_stripe_signing_secret";
const GITHUB_SECRET: &str = "It's a Secret to Everybody";

/// The virtualenv's python with the official verifiers.
fn verifier_python() -> Option<PathBuf> {
    crate::support::python_from_setup("setup-verifiers", "official verifiers")
}

/// Runs the official verifiers over `requests`; their report and whether
/// all verified.
fn verify(python: &Path, dir: &Path, requests: &[Value]) -> (String, bool) {
    let file = dir.join("requests.json");
    std::fs::write(&file, serde_json::to_vec(requests).unwrap()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/verifiers/verify.py");
    let out = Command::new(python)
        .arg(script)
        .arg(&file)
        .output()
        .unwrap();
    (
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        out.status.success(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_named_signature_verifies_with_the_official_library() {
    let Some(python) = verifier_python() else {
        return;
    };
    let receiver = MockUpstream::start().await;
    receiver.route("POST", "/standard", Reply::status(204));
    receiver.route(
        "POST",
        "/stripe",
        Reply::json(200, json!({"received": true})),
    );
    receiver.route("POST", "/github", Reply::text(202, "text/plain", "ok"));
    let connector = |name: &str, scheme: &str, secret: &str| {
        format!(
            "  {name}:\n    url: {}/{name}\n    dangerous_allow_private: true\n    \
             sign: {{ scheme: {scheme}, secret: \"{secret}\" }}\n",
            receiver.url()
        )
    };
    let root = format!(
        "connectors:\n{}{}{}",
        connector("standard", "standard_webhooks", STANDARD_SECRET),
        connector("stripe", "stripe", STRIPE_SECRET),
        connector("github", "github", GITHUB_SECRET),
    );
    let flow = r#"trigger: { manual: {} }
steps:
  - id: standard
    deliver: standard
    body: '{type: "invoice.paid", data: {id: .id, note: "ünïcode & <html>"}}'
  - id: stripe
    deliver: stripe
  - id: github
    deliver: github
    headers: '{"X-GitHub-Event": "push"}'
"#;
    let project = TestProject::new(&root, &[("notify", flow)]);
    let input = project.path().join("event.json");
    std::fs::write(&input, json!({"id": "in_1", "amount": 990}).to_string()).unwrap();
    let output = Command::new(binary())
        .args(["invoke", "notify", "--input"])
        .arg(&input)
        .arg("--project")
        .arg(project.path())
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{shown}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for secret in [STANDARD_SECRET, STRIPE_SECRET, GITHUB_SECRET] {
        assert!(!shown.contains(secret), "a secret is in the run: {shown}");
    }
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["run"]["status"], "succeeded");
    let statuses: Vec<&Value> = (0..3)
        .map(|i| &shown["journal"][i]["output"]["status"])
        .collect();
    assert_eq!(statuses, [&json!(204), &json!(200), &json!(202)]);

    let captured: Vec<Value> = ["standard", "stripe", "github"]
        .iter()
        .zip([
            ("standard_webhooks", STANDARD_SECRET),
            ("stripe", STRIPE_SECRET),
            ("github", GITHUB_SECRET),
        ])
        .map(|(path, (scheme, secret))| {
            let sent = receiver.requests_to("POST", &format!("/{path}"));
            assert_eq!(sent.len(), 1, "{path}");
            let request = &sent[0];
            let headers: serde_json::Map<String, Value> = request
                .headers
                .iter()
                .map(|(name, value)| (name.to_string(), Value::from(value.to_str().unwrap())))
                .collect();
            json!({
                "scheme": scheme,
                "secret": secret,
                "headers": headers,
                "body": String::from_utf8(request.body.to_vec()).unwrap(),
            })
        })
        .collect();
    assert_eq!(captured[2]["headers"]["x-github-event"], "push");
    let (report, verified) = verify(&python, project.path(), &captured);
    assert!(verified, "{report}");
    assert_eq!(report.matches("verified").count(), 3, "{report}");

    // The libraries do refuse: the same requests with a changed body fail.
    let tampered: Vec<Value> = captured
        .iter()
        .map(|request| {
            let mut request = request.clone();
            let body = request["body"].as_str().unwrap().replace("in_1", "in_2");
            request["body"] = body.into();
            request
        })
        .collect();
    let (report, verified) = verify(&python, project.path(), &tampered);
    assert!(!verified, "{report}");
    assert_eq!(report.matches("refused").count(), 3, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_list_and_enable_work_on_the_store_file_and_a_node() {
    let receiver = MockUpstream::start().await;
    receiver.route("POST", "/hooks", Reply::status(503));
    let root = format!(
        "connectors:\n  partner:\n    url: {}/hooks\n    dangerous_allow_private: true\n    \
         circuit_breaker: off\n    sign: {{ scheme: standard_webhooks, secret: \"{STANDARD_SECRET}\" }}\n",
        receiver.url()
    );
    let flow = "trigger: { manual: {} }
steps:
  - id: notify
    deliver: partner
    retry_schedule: [1s]
    disable_after: 1s
";
    let project = TestProject::new(&root, &[("notify", flow)]);
    let node = project.start(&crate::support::env(&[])).await;
    let run = node
        .engine
        .trigger(crate::support::manual_event("notify", json!({"n": 1})))
        .await
        .unwrap()
        .run_id();
    let ended = node
        .engine
        .wait_for(run, std::time::Duration::from_secs(20))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended.status, patchbay_store::RunStatus::Dead);
    assert_eq!(receiver.requests_to("POST", "/hooks").len(), 2);

    let url = format!("http://{}", node.address);
    let listed = crate::support::patchbay(&["endpoints", "list", "--url", &url, "--json"]);
    assert!(listed.status.success(), "{listed:?}");
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let record = &listed["items"][0];
    assert_eq!(record["name"], "partner");
    assert_eq!(
        (&record["failed"], &record["last_status"]),
        (&json!(2), &json!(503))
    );
    assert!(record["disabled_at"].is_string(), "{record}");

    let enabled = crate::support::patchbay(&["endpoints", "enable", "partner", "--url", &url]);
    assert!(enabled.status.success(), "{enabled:?}");
    let enabled: Value = serde_json::from_slice(&enabled.stdout).unwrap();
    assert!(enabled["disabled_at"].is_null(), "{enabled}");
    let unknown = crate::support::patchbay(&["endpoints", "enable", "nobody", "--url", &url]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("404"),
        "{unknown:?}"
    );
    node.stop().await.unwrap();

    // The same records from the store file, as a table: enabled again,
    // the failing spell forgotten, the last attempt still shown.
    let dir = project.path().to_str().unwrap();
    let table = crate::support::patchbay(&["endpoints", "list", "-p", dir]);
    let table = String::from_utf8_lossy(&table.stdout);
    let line = table.lines().nth(1).unwrap_or_default();
    assert!(
        line.starts_with("partner") && line.contains(" ok ") && line.contains("503"),
        "{table}"
    );
    let listed = crate::support::patchbay(&["endpoints", "list", "-p", dir, "--json"]);
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed["items"][0]["failed"], 2, "{listed}");
    let again = crate::support::patchbay(&["endpoints", "enable", "partner", "-p", dir]);
    assert!(again.status.success(), "{again:?}");
    let unknown = crate::support::patchbay(&["endpoints", "enable", "nobody", "-p", dir]);
    assert_eq!(unknown.status.code(), Some(1));
}
