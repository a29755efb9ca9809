//! Secrets stay secret: a flow whose connectors authenticate with a bearer
//! token and an API key header, behind a signed webhook, runs on the real
//! binary with JSON logs at debug level; upstreams echo credentials back
//! and set cookies; the sender adds its own credentials. None of those
//! values may appear in the log, the journal, any API answer or the store
//! file, while the upstreams did receive the real credentials. And every
//! log line inside the run names the run, its flow and its step.

use std::time::Duration;

use patchbay_testkit::{MockUpstream, Reply};
use serde_json::{Value, json};

use crate::signature::standard_webhooks_headers;
use crate::support::{Patchbay, TestProject, get_text, patchbay_run, store_file};

const CRM_TOKEN: &str = "crm-token-7f3a9c1e5b";
const PARTNER_KEY: &str = "partner-key-2d8e4f6a0c";
/// `whsec_` + base64 of "order-webhook-secret-5e1b".
const ORDER_WHSEC: &str = "whsec_b3JkZXItd2ViaG9vay1zZWNyZXQtNWUxYg==";
const INBOUND_TOKEN: &str = "inbound-bearer-9b2c7d4e1f";
const INBOUND_COOKIE: &str = "inbound-cookie-3f6a8b0d2e";
const CUSTOMER_REF: &str = "customer-ref-1a4c6e8f0b";
const UPSTREAM_COOKIE: &str = "upstream-session-5c7e9a1b3d";

const ROOT: &str = "\
connectors:
  crm:
    url: \"${env:CRM_URL}\"
    auth: { bearer: { token: \"${env:CRM_TOKEN}\" } }
    retry: { attempts: 1 }
  partner:
    url: \"${env:PARTNER_URL}\"
    auth: { api_key: { header: X-Partner-Key, value: \"${env:PARTNER_KEY}\" } }
telemetry:
  redact_headers: [X-Customer-Ref]
";

const ORDER_FLOW: &str = "\
trigger:
  webhook:
    path: /hooks/order
    verify: { standard_webhooks: { secret: \"${env:ORDER_WHSEC}\" } }
steps:
  - id: contact
    call: crm POST /contacts
    body: '{email}'
  - id: whoami
    call: partner GET /whoami
  - id: denied
    call: crm GET /denied
    on_error: continue
";

/// Every value that must never be shown.
fn secrets() -> Vec<&'static str> {
    vec![
        CRM_TOKEN,
        PARTNER_KEY,
        ORDER_WHSEC,
        ORDER_WHSEC.trim_start_matches("whsec_"),
        INBOUND_TOKEN,
        INBOUND_COOKIE,
        CUSTOMER_REF,
        UPSTREAM_COOKIE,
    ]
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in secrets() {
        assert!(
            !text.contains(secret),
            "{what} contains the secret {secret:?}:\n{}",
            text.lines()
                .filter(|line| line.contains(secret))
                .take(5)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

#[tokio::test]
async fn secrets_appear_in_no_log_journal_answer_or_store() {
    let crm = MockUpstream::start().await;
    crm.route(
        "POST",
        "/contacts",
        Reply::json(201, json!({ "id": "c_1" })).with_header(
            "set-cookie",
            &format!("session={UPSTREAM_COOKIE}; HttpOnly"),
        ),
    );
    crm.route(
        "GET",
        "/denied",
        Reply::text(401, "text/plain", format!("invalid token {CRM_TOKEN}")),
    );
    let partner = MockUpstream::start().await;
    partner.route(
        "GET",
        "/whoami",
        Reply::json(200, json!({ "you": "acme", "key_seen": PARTNER_KEY })),
    );
    let project = TestProject::new(ROOT, &[("order", ORDER_FLOW)]);
    let log = project.path().join("patchbay.log");
    let mut command = patchbay_run(
        project.path(),
        &[
            ("CRM_URL", crm.url()),
            ("PARTNER_URL", partner.url()),
            ("CRM_TOKEN", CRM_TOKEN.to_string()),
            ("PARTNER_KEY", PARTNER_KEY.to_string()),
            ("ORDER_WHSEC", ORDER_WHSEC.to_string()),
            ("PATCHBAY_LOG", "debug".to_string()),
        ],
    );
    command.args(["--log-format", "json"]);
    let node = Patchbay::spawn(command, &log);
    let base = node.base.clone();
    let client = reqwest::Client::new();

    let body = json!({ "email": "ada@example.com" }).to_string();
    let mut request = client
        .post(format!("{base}/hooks/order"))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {INBOUND_TOKEN}"))
        .header("cookie", format!("sid={INBOUND_COOKIE}"))
        .header("x-customer-ref", CUSTOMER_REF)
        .body(body.clone());
    for (name, value) in standard_webhooks_headers(ORDER_WHSEC, "msg_1", &body) {
        request = request.header(name, value);
    }
    let accepted = request.send().await.expect("webhook sent");
    assert_eq!(accepted.status(), 202);
    let accepted = accepted.text().await.unwrap();
    assert_no_secret("the webhook's answer", &accepted);
    let run_id = serde_json::from_str::<Value>(&accepted).unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string();

    let run_url = format!("{base}/api/v1/runs/{run_id}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let detail = loop {
        let text = get_text(&client, &run_url).await;
        let detail: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if detail["run"]["status"] == "succeeded" {
            break text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run did not succeed: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // The upstreams got the real credentials.
    let contact = &crm.requests_to("POST", "/contacts")[0];
    assert_eq!(
        contact.header("authorization"),
        Some(format!("Bearer {CRM_TOKEN}").as_str())
    );
    assert_eq!(
        partner.requests()[0].header("x-partner-key"),
        Some(PARTNER_KEY)
    );

    // The journal shows what happened, with the credentials masked.
    assert_no_secret("the run's detail", &detail);
    let detail: Value = serde_json::from_str(&detail).unwrap();
    let headers = &detail["run"]["headers"];
    assert_eq!(headers["authorization"], "****", "{headers}");
    assert_eq!(headers["cookie"], "****");
    assert_eq!(headers["x-customer-ref"], "****");
    assert_eq!(headers["webhook-id"], "msg_1");
    let journal = detail["journal"].as_array().expect("journal");
    let entry = |step: &str| {
        journal
            .iter()
            .find(|e| e["step_id"] == step)
            .unwrap_or_else(|| panic!("no journal entry for {step}: {journal:?}"))
    };
    assert_eq!(entry("contact")["output"]["headers"]["set-cookie"], "****");
    assert_eq!(entry("contact")["output"]["body"]["id"], "c_1");
    assert_eq!(entry("whoami")["output"]["body"]["key_seen"], "****");
    // The failed attempt's error, and the `continue` entry's output, quote
    // the upstream's answer with the echoed token masked.
    let denied = entry("denied")["error"].as_str().unwrap();
    assert!(
        denied.contains("401") && denied.contains("****"),
        "{denied}"
    );
    let continued = journal
        .iter()
        .find(|e| e["step_id"] == "denied" && e["status"] == "succeeded")
        .expect("the continued entry");
    let quoted = continued["output"]["error"].as_str().unwrap();
    assert!(quoted.contains("****"), "{quoted}");

    // Every other answer of the API, and the metrics.
    for path in [
        "/api/v1/runs".to_string(),
        "/api/v1/flows".to_string(),
        "/api/v1/flows/order".to_string(),
        "/api/v1/connectors".to_string(),
        "/api/v1/connectors/crm".to_string(),
        "/api/v1/connectors/partner".to_string(),
        "/api/v1/config".to_string(),
        "/api/v1/dead-letters".to_string(),
        "/metrics".to_string(),
    ] {
        let response = client.get(format!("{base}{path}")).send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        // 501: a part of the API this node does not offer yet.
        assert!(
            status.is_success() || status == 501,
            "{path}: {status} {text}"
        );
        assert_no_secret(&path, &text);
    }
    // Errors too: a bad signature and a bad body.
    let forged = client
        .post(format!("{base}/hooks/order"))
        .header("webhook-id", "msg_2")
        .header("webhook-timestamp", "1")
        .header("webhook-signature", format!("v1,{CRM_TOKEN}"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    assert_no_secret("a refused webhook's answer", &forged.text().await.unwrap());

    node.terminate();
    let log_text = std::fs::read_to_string(&log).expect("log written");
    assert_no_secret("the log", &log_text);
    // The store file and its write-ahead log hold no secret either.
    for file in [
        store_file(&project),
        store_file(&project).with_extension("db-wal"),
    ] {
        if let Ok(bytes) = std::fs::read(&file) {
            assert_no_secret(
                &file.display().to_string(),
                &String::from_utf8_lossy(&bytes),
            );
        }
    }

    // JSON lines, each with its context: every line of the run names it.
    let lines: Vec<Value> = log_text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let of_run: Vec<&Value> = lines.iter().filter(|l| l["run_id"] == run_id).collect();
    assert!(of_run.iter().all(|l| l["flow"] == "order"), "{of_run:#?}");
    for step in ["contact", "whoami", "denied"] {
        let finished = of_run
            .iter()
            .find(|l| l["message"] == "step finished" && l["step"] == step)
            .unwrap_or_else(|| panic!("no `step finished` line for {step}"));
        assert_eq!(finished["kind"], "call");
        assert!(finished["timestamp"].is_string() && finished["level"] == "DEBUG");
    }
    let answered = of_run
        .iter()
        .find(|l| l["message"] == "upstream answered" && l["step"] == "whoami")
        .expect("an upstream call logged inside its step");
    assert_eq!(answered["connector"], "partner");
    assert!(
        of_run
            .iter()
            .any(|l| l["message"] == "run finished" && l["status"] == "succeeded"),
        "{of_run:#?}"
    );
}
