//! Webhook dedupe over real sockets: a redelivered event is answered with
//! the run its first delivery created, and makes no second run.

use std::time::Duration;

use crate::signature::{post_raw, runs_of, standard_webhooks_headers};
use crate::support::{TestProject, env};

#[tokio::test]
async fn a_redelivered_event_is_answered_with_the_first_run() {
    let project = TestProject::new(
        "",
        &[
            (
                "orders",
                "trigger:\n  webhook:\n    path: /hooks/orders\n    dedupe: '$headers[\"webhook-id\"]'\nsteps:\n  - transform: '.n'\n",
            ),
            (
                "refunds",
                "trigger:\n  webhook:\n    path: /hooks/refunds\n    dedupe: '$headers[\"webhook-id\"]'\nsteps:\n  - transform: '.n'\n",
            ),
        ],
    );
    let node = project.start(&env(&[])).await;
    let orders = format!("http://{}/hooks/orders", node.address);
    let id = |value: &str| vec![("webhook-id", value.to_string())];

    let (status, first) = post_raw(&orders, r#"{"n":1}"#, &id("msg_1")).await;
    assert_eq!(status, 202, "{first}");
    assert_eq!(first["status"], "accepted");
    let (status, again) = post_raw(&orders, r#"{"n":1}"#, &id("msg_1")).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["status"], "duplicate");
    assert_eq!(again["run_id"], first["run_id"]);

    // Another id, and the same id on another flow, are new events.
    let (status, other) = post_raw(&orders, r#"{"n":2}"#, &id("msg_2")).await;
    assert_eq!(status, 202, "{other}");
    assert_ne!(other["run_id"], first["run_id"]);
    let refunds = format!("http://{}/hooks/refunds", node.address);
    let (status, refund) = post_raw(&refunds, r#"{"n":1}"#, &id("msg_1")).await;
    assert_eq!(status, 202, "{refund}");

    // No id: the expression gives null, so nothing is deduplicated.
    for _ in 0..2 {
        let (status, answer) = post_raw(&orders, r#"{"n":3}"#, &[]).await;
        assert_eq!(status, 202, "{answer}");
    }

    let runs = runs_of(node.address, "orders").await;
    assert_eq!(runs.len(), 4, "{runs:?}");
    let first_run = runs
        .iter()
        .find(|run| run["id"] == first["run_id"])
        .expect("first run listed");
    assert_eq!(first_run["dedupe_key"], "webhook:orders:msg_1");
    let refund_runs = runs_of(node.address, "refunds").await;
    assert_eq!(refund_runs[0]["dedupe_key"], "webhook:refunds:msg_1");
    node.stop().await.unwrap();
}

#[tokio::test]
async fn a_signed_redelivery_is_a_duplicate() {
    let secret = "whsec_ZGVkdXBlLXNpZ25pbmctc2VjcmV0";
    let project = TestProject::new(
        "",
        &[(
            "signed",
            "\
trigger:
  webhook:
    path: /hooks/signed
    verify: { standard_webhooks: { secret: \"${env:HOOK_SECRET}\" } }
    dedupe: '$headers[\"webhook-id\"]'
steps:
  - transform: '.n'
",
        )],
    );
    let node = project.start(&env(&[("HOOK_SECRET", secret.into())])).await;
    let url = format!("http://{}/hooks/signed", node.address);
    let body = r#"{"n":7}"#;
    let (status, first) = post_raw(
        &url,
        body,
        &standard_webhooks_headers(secret, "msg_7", body),
    )
    .await;
    assert_eq!(status, 202, "{first}");
    // The sender retries: same id, fresh timestamp and signature.
    let (status, again) = post_raw(
        &url,
        body,
        &standard_webhooks_headers(secret, "msg_7", body),
    )
    .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["run_id"], first["run_id"]);
    // A forged delivery reusing the id is refused, not reported as a duplicate.
    let forged = standard_webhooks_headers("whsec_Zm9yZ2Vk", "msg_7", body);
    let (status, refused) = post_raw(&url, body, &forged).await;
    assert_eq!(status, 401, "{refused}");
    assert_eq!(runs_of(node.address, "signed").await.len(), 1);
    node.stop().await.unwrap();
}

#[tokio::test]
async fn dedupe_on_the_body_and_in_sync_mode() {
    let project = TestProject::new(
        "",
        &[(
            "quote",
            "trigger:\n  webhook: { path: /hooks/quote, mode: sync, dedupe: '.request_id' }\nsteps:\n  - respond: { body: '{total: (.qty * 3)}' }\n",
        )],
    );
    let node = project.start(&env(&[])).await;
    let url = format!("http://{}/hooks/quote", node.address);
    let (status, first) = post_raw(&url, r#"{"request_id":42,"qty":2}"#, &[]).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first, serde_json::json!({ "total": 6 }));
    let (status, again) = post_raw(&url, r#"{"request_id":42,"qty":2}"#, &[]).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["status"], "duplicate");
    let runs = runs_of(node.address, "quote").await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["dedupe_key"], "webhook:quote:42");
    assert_eq!(again["run_id"], runs[0]["id"]);
    node.stop().await.unwrap();
}

#[tokio::test]
async fn a_dedupe_expression_that_fails_is_a_400_naming_the_flow() {
    let project = TestProject::new(
        "",
        &[(
            "strict",
            "trigger:\n  webhook: { path: /hooks/strict, dedupe: '.id | ascii_downcase' }\nsteps:\n  - transform: '.'\n",
        )],
    );
    let node = project.start(&env(&[])).await;
    let url = format!("http://{}/hooks/strict", node.address);
    let (status, body) = post_raw(&url, r#"{"id":5}"#, &[]).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_request");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("flow `strict`") && message.contains("dedupe"),
        "{body}"
    );
    let (status, body) = post_raw(&url, r#"{"id":{"a":1}}"#, &[]).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = post_raw(&url, r#"{"id":"ABC"}"#, &[]).await;
    assert_eq!(status, 202, "{body}");
    let runs = runs_of(node.address, "strict").await;
    assert_eq!(runs.len(), 1, "refused events make no run: {runs:?}");
    assert_eq!(runs[0]["dedupe_key"], "webhook:strict:abc");
    let run_id: uuid::Uuid = body["run_id"].as_str().unwrap().parse().unwrap();
    let run = node
        .engine
        .wait_for(run_id, Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.input, serde_json::json!({ "id": "ABC" }));
    node.stop().await.unwrap();
}
