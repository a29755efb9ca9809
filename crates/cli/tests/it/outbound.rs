//! Outbound network safety through the real binary: a redirect to another
//! loopback port reaches nothing unless the connector allows it, and then
//! without credentials; an inward address is refused before any connection;
//! plain http to another host is a `check` warning.

use std::sync::atomic::Ordering;
use std::time::Duration;

use patchbay_testkit::{MockUpstream, Reply, counting_listener};
use serde_json::{Value, json};

use crate::support::{
    Patchbay, TestProject, eventually, get_json, patchbay, patchbay_run, post_json,
};

const ROOT: &str = "\
connectors:
  strict:
    url: \"${env:START_URL}\"
    # Only the upstream's own address: the test's loopback port.
    dangerous_allow_private: [127.0.0.1/32]
    retry: { attempts: 1 }
    headers: { X-Tenant-Secret: \"${env:TENANT}\" }
    auth: { api_key: { header: X-Api-Key, value: \"${env:KEY}\" } }
  open:
    url: \"${env:START_URL}\"
    dangerous_allow_private: [127.0.0.1/32]
    retry: { attempts: 1 }
    redirects: { max: 2, allow_hosts: [127.0.0.1] }
    headers: { X-Tenant-Secret: \"${env:TENANT}\" }
    auth: { api_key: { header: X-Api-Key, value: \"${env:KEY}\" } }
  inward:
    url: \"${env:INWARD_URL}\"
    retry: { attempts: 3, backoff: { min: 1ms, max: 2ms } }
engine: { run_retries: [], poll_interval: 100ms }
";

fn flow(connector: &str, method: &str) -> String {
    format!(
        "trigger: {{ webhook: {{ path: /hooks/{connector} }} }}\nsteps:\n  \
         - call: {connector} {method} /start\n    body: '.'\n"
    )
}

/// Posts `body` to the webhook of `connector` and waits for the run to end.
async fn run_through(base: &str, connector: &str) -> Value {
    let answer = post_json(&format!("{base}/hooks/{connector}"), &json!({"n": 1})).await;
    assert_eq!(answer.status().as_u16(), 202);
    let accepted: Value = answer.json().await.unwrap();
    let id = accepted["run_id"].as_str().unwrap().to_string();
    let url = format!("{base}/api/v1/runs/{id}");
    let ended = eventually(Duration::from_secs(15), || async {
        let status = get_json(&url).await["run"]["status"].clone();
        matches!(status.as_str(), Some("succeeded" | "dead"))
    })
    .await;
    let run = get_json(&url).await["run"].clone();
    assert!(ended, "run {id} did not end: {run}");
    run
}

#[tokio::test]
async fn redirects_and_inward_addresses_through_the_binary() {
    let target = MockUpstream::start().await;
    target.route("GET", "/landing", Reply::json(200, json!({"landed": true})));
    target.route(
        "POST",
        "/landing",
        Reply::json(200, json!({"landed": true})),
    );
    let start = MockUpstream::start().await;
    for method in ["GET", "POST"] {
        start.route(
            method,
            "/start",
            Reply::status(307).with_header("location", &format!("{}/landing", target.url())),
        );
    }
    let (inward, accepted) = counting_listener("127.0.0.1").await.unwrap();
    let project = TestProject::new(
        ROOT,
        &[
            ("strict", &flow("strict", "POST")),
            ("open", &flow("open", "POST")),
            ("inward", &flow("inward", "GET")),
        ],
    );
    let log = project.path().join("patchbay.log");
    let env = [
        ("START_URL", start.url()),
        // A name that resolves to loopback.
        ("INWARD_URL", format!("http://localhost:{}", inward.port())),
        ("TENANT", "tenant-SECRET-1".to_string()),
        ("KEY", "key-SECRET-2".to_string()),
    ];
    let node = Patchbay::spawn(patchbay_run(project.path(), &env), &log);

    // No redirects without opt-in: the target hears nothing.
    let run = run_through(&node.base, "strict").await;
    assert_eq!(run["status"], "dead", "{run}");
    let error = run["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!("a redirect to {}", target.url()))
            && error.contains("follows no redirects"),
        "{run}"
    );
    assert_eq!(target.request_count(), 0, "the redirect was followed");

    // Allowed across origins: followed, body kept, credentials left behind.
    let run = run_through(&node.base, "open").await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let hops = target.requests();
    assert_eq!(hops.len(), 1);
    assert_eq!(hops[0].json, Some(json!({"n": 1})));
    for header in ["x-api-key", "x-tenant-secret", "authorization", "referer"] {
        assert_eq!(hops[0].header(header), None, "{header} crossed origins");
    }
    assert!(!format!("{:?}", hops[0].headers).contains("SECRET"));
    assert_eq!(
        start.requests()[0].header("x-api-key"),
        Some("key-SECRET-2"),
        "the origin itself gets the credential"
    );

    // An inward name is refused before connecting, and not retried.
    let run = run_through(&node.base, "inward").await;
    assert_eq!(run["status"], "dead", "{run}");
    let error = run["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("`localhost` is") && error.contains("dangerous_allow_private"),
        "{run}"
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "a connection was made");
    node.terminate();
}

#[test]
fn check_warns_of_plain_http_to_another_host() {
    let project = TestProject::new(
        "connectors:\n  remote: { url: http://api.example.com }\n  local: { url: http://127.0.0.1:9 }\n",
        &[],
    );
    let output = patchbay(&["check", project.path().to_str().unwrap()]);
    assert!(output.status.success(), "a warning does not fail the check");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("patchbay.yaml:2:")
            && stderr.contains(
                "warning: connector `remote`: url `http://api.example.com` is plain http://"
            ),
        "{stderr}"
    );
    assert!(!stderr.contains("`local`"), "{stderr}");
}
