//! Signed webhooks over real sockets: a request with a valid signature is
//! accepted; a forged, altered, stale or unsigned one is answered 401 and
//! leaves no run. Signatures are made by Python's `hmac` module, so the
//! expected values do not come from the code under test.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::support::{TestProject, env, get_json};

/// Runs a Python snippet with `args` in `args` and returns its trimmed
/// standard output.
pub(crate) fn python(script: &str, args: &[&str]) -> String {
    let output = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import sys, hmac, hashlib, base64\nargs = sys.argv[1:]\n{script}"
        ))
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("utf-8 output")
        .trim()
        .to_string()
}

/// The `webhook-signature` value Standard Webhooks prescribes.
pub(crate) fn standard_webhooks_signature(
    secret: &str,
    id: &str,
    timestamp: u64,
    body: &str,
) -> String {
    python(
        "key = base64.b64decode(args[0].removeprefix('whsec_'))\n\
         content = f'{args[1]}.{args[2]}.{args[3]}'.encode()\n\
         print('v1,' + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode())",
        &[secret, id, &timestamp.to_string(), body],
    )
}

/// Headers of a Standard Webhooks delivery of `body`, signed now.
pub(crate) fn standard_webhooks_headers(
    secret: &str,
    id: &str,
    body: &str,
) -> Vec<(&'static str, String)> {
    let timestamp = unix_now();
    vec![
        ("webhook-id", id.to_string()),
        ("webhook-timestamp", timestamp.to_string()),
        (
            "webhook-signature",
            standard_webhooks_signature(secret, id, timestamp, body),
        ),
    ]
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// POSTs `body` as it is, with `headers`.
pub(crate) async fn post_raw(url: &str, body: &str, headers: &[(&str, String)]) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// The runs of `flow`, newest first, as the API lists them.
pub(crate) async fn runs_of(address: std::net::SocketAddr, flow: &str) -> Vec<Value> {
    let listed = get_json(&format!("http://{address}/api/v1/runs?flow={flow}")).await;
    listed["items"].as_array().expect("items array").clone()
}

const SECRET: &str = "whsec_c2lnbmluZy1zZWNyZXQtZm9yLXRoZS10ZXN0cw==";
const BODY: &str = r#"{"type":"order.created","order_id":"ord_1"}"#;

fn assert_refused(status: u16, body: &Value, reason: &str) {
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "invalid_signature", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(reason), "expected `{reason}` in {body}");
    assert!(
        !message.contains("c2lnbmluZy1zZWNyZXQ"),
        "the secret leaked: {body}"
    );
}

#[tokio::test]
async fn standard_webhooks_accepts_valid_and_refuses_everything_else() {
    let project = TestProject::new(
        "",
        &[(
            "orders",
            "trigger:\n  webhook:\n    path: /hooks/orders\n    verify: { standard_webhooks: { secret: \"${env:HOOK_SECRET}\" } }\nsteps:\n  - transform: '.order_id'\n",
        )],
    );
    let node = project.start(&env(&[("HOOK_SECRET", SECRET.into())])).await;
    let url = format!("http://{}/hooks/orders", node.address);

    let (status, body) = post_raw(
        &url,
        BODY,
        &standard_webhooks_headers(SECRET, "msg_1", BODY),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "accepted");
    let run_id: uuid::Uuid = body["run_id"].as_str().unwrap().parse().unwrap();

    let other_secret = "whsec_YW5vdGhlci1zZWNyZXQ=";
    let (status, body) = post_raw(
        &url,
        BODY,
        &standard_webhooks_headers(other_secret, "msg_2", BODY),
    )
    .await;
    assert_refused(status, &body, "no signature matched");

    let altered = BODY.replace("ord_1", "ord_9");
    let (status, body) = post_raw(
        &url,
        &altered,
        &standard_webhooks_headers(SECRET, "msg_3", BODY),
    )
    .await;
    assert_refused(status, &body, "no signature matched");

    let stale = unix_now() - 600;
    let stale_headers = vec![
        ("webhook-id", "msg_4".to_string()),
        ("webhook-timestamp", stale.to_string()),
        (
            "webhook-signature",
            standard_webhooks_signature(SECRET, "msg_4", stale, BODY),
        ),
    ];
    let (status, body) = post_raw(&url, BODY, &stale_headers).await;
    assert_refused(status, &body, "outside the 300 s tolerance");

    let mut unsigned = standard_webhooks_headers(SECRET, "msg_5", BODY);
    unsigned.retain(|(name, _)| *name != "webhook-signature");
    let (status, body) = post_raw(&url, BODY, &unsigned).await;
    assert_refused(status, &body, "missing header `webhook-signature`");

    // A refused request is not even parsed: invalid JSON is still a 401.
    let (status, body) = post_raw(&url, "not json", &[]).await;
    assert_refused(status, &body, "missing header `webhook-id`");

    let run = node
        .engine
        .wait_for(run_id, std::time::Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.output, Some(Value::from("ord_1")));
    let runs = runs_of(node.address, "orders").await;
    assert_eq!(runs.len(), 1, "only the valid request made a run: {runs:?}");
    assert_eq!(runs[0]["id"], run_id.to_string());
    node.stop().await.unwrap();
}

#[tokio::test]
async fn github_signature_with_a_rotated_secret() {
    let project = TestProject::new(
        "",
        &[(
            "push",
            "trigger:\n  webhook:\n    path: /hooks/github\n    verify:\n      github:\n        secret: [\"${env:GH_NEW}\", \"${env:GH_OLD}\"]\nsteps:\n  - transform: '.ref'\n",
        )],
    );
    let node = project
        .start(&env(&[
            ("GH_NEW", "new-secret".into()),
            ("GH_OLD", "old-secret".into()),
        ]))
        .await;
    let url = format!("http://{}/hooks/github", node.address);
    let body = r#"{"ref":"refs/heads/main"}"#;
    let sign = |secret: &str| {
        python(
            "print('sha256=' + hmac.new(args[0].encode(), args[1].encode(), hashlib.sha256).hexdigest())",
            &[secret, body],
        )
    };
    for secret in ["new-secret", "old-secret"] {
        let (status, answer) = post_raw(&url, body, &[("X-Hub-Signature-256", sign(secret))]).await;
        assert_eq!(status, 202, "{secret}: {answer}");
    }
    let (status, answer) = post_raw(&url, body, &[("X-Hub-Signature-256", sign("stolen"))]).await;
    assert_refused(status, &answer, "no signature matched");
    let (status, answer) =
        post_raw(&url, body, &[("X-Hub-Signature-256", "sha1=abc".into())]).await;
    assert_refused(status, &answer, "`sha256=`");
    let (status, answer) = post_raw(&url, body, &[]).await;
    assert_refused(status, &answer, "missing header `x-hub-signature-256`");
    assert_eq!(runs_of(node.address, "push").await.len(), 2);
    node.stop().await.unwrap();
}

#[tokio::test]
async fn stripe_signature_and_its_tolerance() {
    let project = TestProject::new(
        "",
        &[(
            "payments",
            "trigger:\n  webhook:\n    path: /hooks/stripe\n    verify: { stripe: { secret: \"${env:STRIPE_SECRET}\", tolerance: 1m } }\nsteps:\n  - transform: '.id'\n",
        )],
    );
    let secret = "whsec_stripe_endpoint_secret";
    let node = project
        .start(&env(&[("STRIPE_SECRET", secret.into())]))
        .await;
    let url = format!("http://{}/hooks/stripe", node.address);
    let body = r#"{"id":"evt_1","type":"charge.succeeded"}"#;
    // Stripe keys the HMAC with the whole secret, prefix included.
    let header = |timestamp: u64| {
        let v1 = python(
            "print(hmac.new(args[0].encode(), f'{args[1]}.{args[2]}'.encode(), hashlib.sha256).hexdigest())",
            &[secret, &timestamp.to_string(), body],
        );
        format!("t={timestamp},v1={v1}")
    };
    let (status, answer) = post_raw(&url, body, &[("Stripe-Signature", header(unix_now()))]).await;
    assert_eq!(status, 202, "{answer}");
    let (status, answer) = post_raw(
        &url,
        body,
        &[("Stripe-Signature", header(unix_now() - 120))],
    )
    .await;
    assert_refused(status, &answer, "outside the 60 s tolerance");
    let forged = format!("t={},v1={}", unix_now(), "0".repeat(64));
    let (status, answer) = post_raw(&url, body, &[("Stripe-Signature", forged)]).await;
    assert_refused(status, &answer, "no signature matched");
    assert_eq!(runs_of(node.address, "payments").await.len(), 1);
    node.stop().await.unwrap();
}

#[tokio::test]
async fn generic_hmac_with_prefix_and_timestamp() {
    let project = TestProject::new(
        "",
        &[(
            "generic",
            "\
trigger:
  webhook:
    path: /hooks/generic
    verify:
      hmac:
        secret: \"${env:HMAC_SECRET}\"
        header: X-Signature
        algorithm: sha512
        encoding: base64
        prefix: 'sha512='
        timestamp_header: X-Signature-Timestamp
        tolerance: 2m
steps:
  - transform: '.n'
",
        )],
    );
    let node = project
        .start(&env(&[("HMAC_SECRET", "generic-secret".into())]))
        .await;
    let url = format!("http://{}/hooks/generic", node.address);
    let body = r#"{"n":1}"#;
    let sign = |timestamp: &str, body: &str| {
        python(
            "d = hmac.new(args[0].encode(), f'{args[1]}.{args[2]}'.encode(), hashlib.sha512).digest()\n\
             print('sha512=' + base64.b64encode(d).decode())",
            &["generic-secret", timestamp, body],
        )
    };
    let now = unix_now().to_string();
    let headers = |timestamp: &str, signature: String| {
        vec![
            ("X-Signature", signature),
            ("X-Signature-Timestamp", timestamp.to_string()),
        ]
    };
    let (status, answer) = post_raw(&url, body, &headers(&now, sign(&now, body))).await;
    assert_eq!(status, 202, "{answer}");
    let (status, answer) = post_raw(&url, r#"{"n":2}"#, &headers(&now, sign(&now, body))).await;
    assert_refused(status, &answer, "no signature matched");
    let old = (unix_now() - 600).to_string();
    let (status, answer) = post_raw(&url, body, &headers(&old, sign(&old, body))).await;
    assert_refused(status, &answer, "x-signature-timestamp");
    let unprefixed = sign(&now, body).replace("sha512=", "");
    let (status, answer) = post_raw(&url, body, &headers(&now, unprefixed)).await;
    assert_refused(status, &answer, "prefix");
    assert_eq!(runs_of(node.address, "generic").await.len(), 1);
    node.stop().await.unwrap();
}
