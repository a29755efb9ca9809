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
    dangerous_allow_private: true
    auth: { bearer: { token: \"${env:CRM_TOKEN}\" } }
    retry: { attempts: 1 }
    response_headers: true
  partner:
    url: \"${env:PARTNER_URL}\"
    dangerous_allow_private: true
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
    let files = if crate::support::sqlite_only("secrets in the store file's bytes") {
        Vec::new()
    } else {
        vec![
            store_file(&project),
            store_file(&project).with_extension("db-wal"),
        ]
    };
    for file in files {
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

// Every kind of credential, echoed back in every form an upstream might use.

const BASIC_USER: &str = "basic-user-4c2e9a";
/// A space, a slash and a plus: its URL-encoded forms differ from it.
const BASIC_PASSWORD: &str = "basic pass/7e+1d";
/// 34 characters, like the token of the original report.
const BEARER_TOKEN: &str = "bearer-0d6b3f9a2c5e8b1d4f7a0c3e6b9";
const QUERY_KEY: &str = "query key/9f1b+3d";
const HEADER_KEY: &str = "header-key-6a2d8f0b4c";
const OAUTH_ID: &str = "patchbay-it";
const OAUTH_SECRET: &str = "oauth-client-secret-8a1f";
const FIRST_REFRESH: &str = "refresh-token-initial-5b7d";

const ECHO_ROOT: &str = "\
connectors:
  basic:
    url: \"${env:ECHO_URL}\"
    dangerous_allow_private: true
    retry: { attempts: 1 }
    auth: { basic: { username: \"${env:BASIC_USER}\", password: \"${env:BASIC_PASSWORD}\" } }
  bearer:
    url: \"${env:ECHO_URL}\"
    dangerous_allow_private: true
    retry: { attempts: 1 }
    auth: { bearer: { token: \"${env:BEARER_TOKEN}\" } }
  query_key:
    url: \"${env:ECHO_URL}\"
    dangerous_allow_private: true
    retry: { attempts: 1 }
    auth: { api_key: { query: api_key, value: \"${env:QUERY_KEY}\" } }
  header_key:
    url: \"${env:ECHO_URL}\"
    dangerous_allow_private: true
    retry: { attempts: 1 }
    auth: { api_key: { header: X-Api-Key, value: \"${env:HEADER_KEY}\" } }
  client_credentials:
    url: \"${env:ECHO_URL}\"
    dangerous_allow_private: true
    retry: { attempts: 1 }
    auth:
      oauth2:
        token_url: \"${env:TOKEN_URL}\"
        client_id: patchbay-it
        client_secret: \"${env:OAUTH_SECRET}\"
  refresh_token:
    url: \"${env:ECHO_URL}\"
    dangerous_allow_private: true
    retry: { attempts: 1 }
    auth:
      oauth2:
        token_url: \"${env:TOKEN_URL}\"
        grant: refresh_token
        client_id: patchbay-it
        client_secret: \"${env:OAUTH_SECRET}\"
        refresh_token: \"${env:FIRST_REFRESH}\"
";

const CONNECTORS: [&str; 6] = [
    "basic",
    "bearer",
    "query_key",
    "header_key",
    "client_credentials",
    "refresh_token",
];

/// A sync webhook calling every connector three times: a 401 quoting the
/// credential at once, a 401 quoting it from character 281 (across the
/// excerpt's end), and a 200 quoting it after character 300; the answer
/// returns the 200s' bodies.
fn echo_flow() -> String {
    let mut flow = String::from(
        "trigger: { webhook: { path: /hooks/echo, mode: sync, timeout: 20s } }\nsteps:\n",
    );
    for name in CONNECTORS {
        flow.push_str(&format!(
            "  - id: {name}_short\n    call: {name} GET /fail/0\n    on_error: continue\n\
             \x20 - id: {name}_long\n    call: {name} GET /fail/280\n    on_error: continue\n\
             \x20 - id: {name}_ok\n    call: {name} GET /ok/310\n"
        ));
    }
    let fields: Vec<String> = CONNECTORS
        .iter()
        .map(|name| format!("{name}: $steps.{name}_ok.body.echo"))
        .collect();
    flow.push_str(&format!(
        "  - respond: {{ body: '{{{}}}' }}\n",
        fields.join(", ")
    ));
    flow
}

fn url_encoded(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn base64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// Every credential a request carried, in every form an upstream might
/// write it back in: raw, base64, URL-encoded, and a basic pair's halves.
fn echo_of(request: &patchbay_testkit::RecordedRequest) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(auth) = request.header("authorization") {
        parts.push(auth.to_string());
        if let Some((scheme, credential)) = auth.split_once(' ') {
            parts.push(credential.to_string());
            if scheme == "Basic" {
                use base64::Engine as _;
                let pair = base64::engine::general_purpose::STANDARD
                    .decode(credential)
                    .unwrap();
                let pair = String::from_utf8(pair).unwrap();
                let (user, password) = pair.split_once(':').unwrap();
                parts.extend([
                    pair.clone(),
                    url_encoded(&pair),
                    user.to_string(),
                    password.to_string(),
                    url_encoded(password),
                    base64(password),
                ]);
            } else {
                parts.push(base64(credential));
            }
        }
    }
    if let Some(key) = request.header("x-api-key") {
        parts.extend([key.to_string(), base64(key), url_encoded(key)]);
    }
    if !request.query.is_empty() {
        // As sent: the key URL-encoded; and decoded.
        parts.push(request.query.clone());
        for (_, value) in &request.query_pairs {
            parts.extend([value.clone(), base64(value)]);
        }
    }
    parts.join(" | ")
}

fn echo_reply(request: &patchbay_testkit::RecordedRequest, status: u16) -> Reply {
    let pad: usize = request
        .param("pad")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let text = format!("{}{}", "x".repeat(pad), echo_of(request));
    if status == 200 {
        Reply::json(200, json!({ "echo": text }))
    } else {
        Reply::text(status, "text/plain", format!("denied: {text}"))
    }
}

/// Every form of `value` the checks look for.
fn forms_of(value: &str) -> Vec<String> {
    let mut forms = vec![value.to_string(), base64(value), url_encoded(value)];
    if let Some((user, password)) = value.split_once(':') {
        forms.extend([
            user.to_string(),
            password.to_string(),
            url_encoded(password),
        ]);
    }
    forms
}

fn assert_hidden(what: &str, text: &str, credentials: &[String]) {
    for credential in credentials {
        for form in forms_of(credential) {
            // The start of a cut-off echo counts too.
            let probe: String = form.chars().take(12).collect();
            assert!(
                !text.contains(&probe),
                "{what} contains {probe:?} (of a credential):\n{}",
                text.lines()
                    .filter(|line| line.contains(&probe))
                    .take(3)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn every_form_of_every_credential_stays_hidden() {
    let echo = MockUpstream::start().await;
    echo.route_fn("GET", "/fail/{pad}", |request| echo_reply(request, 401));
    echo.route_fn("GET", "/ok/{pad}", |request| echo_reply(request, 200));
    let oauth = patchbay_testkit::oauth::start(OAUTH_ID, OAUTH_SECRET)
        .await
        .unwrap();
    oauth.add_refresh_token(FIRST_REFRESH);
    oauth.set_rotation(true);

    let flow = echo_flow();
    let project = TestProject::new(ECHO_ROOT, &[("echo", flow.as_str())]);
    let log = project.path().join("patchbay.log");
    let env = [
        ("ECHO_URL", echo.url()),
        ("TOKEN_URL", oauth.token_url()),
        ("BASIC_USER", BASIC_USER.to_string()),
        ("BASIC_PASSWORD", BASIC_PASSWORD.to_string()),
        ("BEARER_TOKEN", BEARER_TOKEN.to_string()),
        ("QUERY_KEY", QUERY_KEY.to_string()),
        ("HEADER_KEY", HEADER_KEY.to_string()),
        ("OAUTH_SECRET", OAUTH_SECRET.to_string()),
        ("FIRST_REFRESH", FIRST_REFRESH.to_string()),
        ("PATCHBAY_LOG", "debug".to_string()),
    ];
    let mut command = patchbay_run(project.path(), &env);
    command.args(["--log-format", "json"]);
    let node = Patchbay::spawn(command, &log);
    let base = node.base.clone();
    let client = reqwest::Client::new();

    let answer = client
        .post(format!("{base}/hooks/echo"))
        .json(&json!({}))
        .send()
        .await
        .expect("webhook sent");
    assert_eq!(answer.status(), 200);
    let run_id = answer.headers()["patchbay-run-id"]
        .to_str()
        .unwrap()
        .to_string();
    let answer = answer.text().await.unwrap();

    // Every credential, as configured and as issued.
    let mut credentials: Vec<String> = [
        format!("{BASIC_USER}:{BASIC_PASSWORD}"),
        BASIC_USER.to_string(),
        BASIC_PASSWORD.to_string(),
        BEARER_TOKEN.to_string(),
        QUERY_KEY.to_string(),
        HEADER_KEY.to_string(),
        OAUTH_SECRET.to_string(),
        FIRST_REFRESH.to_string(),
    ]
    .into();
    let mut issued = 0;
    for request in echo.requests() {
        if let Some(token) = request
            .header("authorization")
            .and_then(|auth| auth.strip_prefix("Bearer "))
            .filter(|token| *token != BEARER_TOKEN)
        {
            credentials.push(token.to_string());
            issued += 1;
        }
    }
    assert!(issued >= 6, "OAuth tokens were sent: {issued}");
    let rotated = oauth.refresh_tokens();
    assert!(!rotated.is_empty() && !rotated.contains(&FIRST_REFRESH.to_string()));
    credentials.extend(rotated);

    // The answer has the echoes, masked.
    assert!(answer.contains("****"), "{answer}");
    assert_hidden("the sync answer", &answer, &credentials);

    let detail = get_text(&client, &format!("{base}/api/v1/runs/{run_id}")).await;
    assert!(detail.contains("denied: "), "{detail}");
    assert_hidden("the run's detail", &detail, &credentials);
    for path in [
        "/api/v1/runs",
        "/api/v1/flows",
        "/api/v1/flows/echo",
        "/api/v1/connectors",
        "/api/v1/connectors/basic",
        "/api/v1/connectors/bearer",
        "/api/v1/connectors/query_key",
        "/api/v1/connectors/header_key",
        "/api/v1/connectors/client_credentials",
        "/api/v1/connectors/refresh_token",
        "/api/v1/config",
        "/api/v1/dead-letters",
        "/api/v1/stats",
        "/metrics",
    ] {
        let text = get_text(&client, &format!("{base}{path}")).await;
        assert_hidden(path, &text, &credentials);
    }

    // The store's files, readable by their owner only and holding nothing.
    let db = store_file(&project);
    let files = if crate::support::sqlite_only("the store file's mode and bytes") {
        Vec::new()
    } else {
        vec![
            db.clone(),
            db.with_extension("db-wal"),
            db.with_extension("db-shm"),
            db.with_extension("db.key"),
        ]
    };
    #[cfg(unix)]
    for file in &files {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
    for file in files.iter().take(2) {
        let bytes = std::fs::read(file).unwrap();
        assert_hidden(
            &file.display().to_string(),
            &String::from_utf8_lossy(&bytes),
            &credentials,
        );
    }

    node.terminate();
    let text = std::fs::read_to_string(&log).unwrap();
    assert_hidden("the log", &text, &credentials);
    if let Ok(bytes) = std::fs::read(&db) {
        assert_hidden("the store", &String::from_utf8_lossy(&bytes), &credentials);
    }

    // The sealed refresh token opens after a restart: the server accepts
    // only the newest, and the call succeeds with it.
    let restarted = Patchbay::spawn(patchbay_run(project.path(), &env), &log);
    let again = client
        .post(format!("{}/hooks/echo", restarted.base))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    let refreshes: Vec<_> = oauth
        .token_log()
        .into_iter()
        .filter(|r| r.grant_type == "refresh_token")
        .collect();
    assert!(
        refreshes.iter().all(|r| r.status == 200),
        "a superseded refresh token was presented: {refreshes:?}"
    );
    restarted.terminate();
}
