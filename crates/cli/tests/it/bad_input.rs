//! Webhook requests that must be refused without creating a run.

use patchbay_store::RunFilter;
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{TestProject, env};

#[tokio::test]
async fn bad_requests_are_refused_and_create_no_run() {
    let project = TestProject::new(
        "server: { max_body_bytes: 2048 }\n",
        &[
            (
                "orders",
                "trigger: { webhook: { path: /hooks/orders } }\nsteps:\n  - transform: '.'\n",
            ),
            (
                "small",
                "trigger: { webhook: { path: /hooks/small, max_body_bytes: 16 } }\nsteps:\n  - transform: '.'\n",
            ),
        ],
    );
    let node = project.start(&env(&[])).await;
    let base = format!("http://{}", node.address);
    let client = reqwest::Client::new();

    let cases = [
        (
            client
                .post(format!("{base}/hooks/orders"))
                .body("{not json"),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            client.post(format!("{base}/hooks/orders")).body(""),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            client
                .post(format!("{base}/hooks/orders"))
                .body(format!("\"{}\"", "x".repeat(4096))),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            client
                .post(format!("{base}/hooks/small"))
                .body("{\"a\": \"0123456789abcdef\"}"),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            client.post(format!("{base}/hooks/nope")).body("{}"),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            client.get(format!("{base}/hooks/orders")),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            client.put(format!("{base}/hooks/orders")).body("{}"),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
    ];
    for (request, status, code) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status);
        if status == StatusCode::METHOD_NOT_ALLOWED {
            assert_eq!(response.headers()["allow"], "POST");
        }
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }

    let runs = node
        .engine
        .store()
        .list_runs(&RunFilter::default())
        .await
        .unwrap();
    assert!(runs.is_empty(), "refused requests created runs: {runs:?}");

    // A good request still works afterwards, at exactly the limit's edge.
    let ok = client
        .post(format!("{base}/hooks/small"))
        .body("{\"a\": \"012345\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::ACCEPTED);
    node.stop().await.unwrap();
}
