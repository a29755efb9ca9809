//! Connectors with a contract (`spec:`): `check` holds calls and the fields
//! flows read from replies against the OpenAPI document, and a call may
//! name its operation by `operationId`.

use std::time::Duration;

use patchbay_store::RunStatus;
use patchbay_testkit::{MockUpstream, Reply};
use serde_json::json;

use crate::check::{check_report, fixture};
use crate::support::{TestProject, env, eventually, get_json, run_manually};

#[test]
fn check_holds_calls_and_reads_against_the_spec() {
    let dir = fixture("contracts");
    let report = check_report(&dir, &[]);
    // The headline case, spelt out: the misspelt field, where it is, and
    // the name it was meant to be.
    assert!(
        report.contains(
            "[project]/flows/typos.yaml:6:16: flow `typos` step 2: `$steps.list.body.contcts`: \
             the 200 reply of `GET /contacts` (connector `crm`, specs/crm.yaml) has no field \
             `contcts` — did you mean `contacts`?"
        ),
        "{report}"
    );
    insta::assert_snapshot!(report);
}

#[test]
fn a_corpus_of_valid_flows_over_two_specs_passes_check() {
    let dir = fixture("contracts-valid");
    let report = check_report(&dir, &[]);
    assert!(report.starts_with("exit code: Some(0)"), "{report}");
    // The version hashes the fixture's files: a snapshot of it would only
    // say that they changed.
    let report: String = report
        .lines()
        .map(|line| match line.split_once("configuration version ") {
            Some((before, _)) => format!("{before}configuration version [version]\n"),
            None => format!("{line}\n"),
        })
        .collect();
    insta::assert_snapshot!(report);
}

const SPEC: &str = r#"
openapi: 3.1.0
info: { title: Contacts, version: "1" }
paths:
  /contacts/{contactId}:
    get:
      operationId: getContact
      parameters:
        - { name: contactId, in: path, required: true, schema: { type: string } }
      responses:
        "200":
          description: One contact.
          content:
            application/json:
              schema:
                type: object
                required: [id, email]
                properties:
                  id: { type: string }
                  email: { type: string }
"#;

#[tokio::test]
async fn a_call_by_operation_id_sends_the_operation_s_path() {
    let upstream = MockUpstream::start().await;
    upstream.route(
        "GET",
        "/contacts/c-42",
        Reply::json(200, json!({ "id": "c-42", "email": "ada@example.com" })),
    );
    let project = TestProject::new(
        "connectors:\n  crm:\n    url: \"${env:UP_URL}\"\n    dangerous_allow_private: true\n    spec: crm.yaml\n",
        &[(
            "lookup",
            "trigger: { manual: {} }\nsteps:\n  - id: one\n    call: crm getContact\n    \
             path_params: { contactId: '\"c-\" + .id' }\n  - transform: '$steps.one.body.email'\n",
        )],
    );
    std::fs::write(project.path().join("crm.yaml"), SPEC).unwrap();
    let node = project.start(&env(&[("UP_URL", upstream.url())])).await;

    let run = run_manually(&node, "lookup", json!({ "id": "42" })).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    assert_eq!(run.output, Some(json!("ada@example.com")));
    let requests = upstream.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "GET");
    assert_eq!(requests[0].path, "/contacts/c-42");
}

/// Connectors `crm` (drift recorded) and `strict` (`contract: enforce`) on
/// one upstream, both with the contacts contract.
const DRIFT_ROOT: &str = "\
connectors:
  crm:
    url: \"${env:UP_URL}\"
    dangerous_allow_private: true
    spec: crm.yaml
  strict:
    url: \"${env:UP_URL}\"
    dangerous_allow_private: true
    spec: crm.yaml
    contract: enforce
";

const LOOKUP: &str = "\
trigger: { manual: {} }
run_retries: []
steps:
  - id: one
    call: crm GET /contacts/{.id}
";

const STRICT_LOOKUP: &str = "\
trigger: { manual: {} }
run_retries: []
steps:
  - id: one
    call: strict GET /contacts/{.id}
";

#[tokio::test]
async fn a_reply_that_changes_shape_is_one_drift_record_with_a_rising_count() {
    let upstream = MockUpstream::start().await;
    upstream.route(
        "GET",
        "/contacts/{id}",
        Reply::json(200, json!({ "id": "c-1", "email": "ada@example.com" })),
    );
    let project = TestProject::new(DRIFT_ROOT, &[("lookup", LOOKUP), ("strict", STRICT_LOOKUP)]);
    std::fs::write(project.path().join("crm.yaml"), SPEC).unwrap();
    let node = project.start(&env(&[("UP_URL", upstream.url())])).await;
    let base = format!("http://{}", node.address);

    for _ in 0..3 {
        let run = run_manually(&node, "lookup", json!({ "id": "1" })).await;
        assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    }
    // The provider starts sending the e-mail as a number, and drops `id`.
    upstream.route(
        "GET",
        "/contacts/{id}",
        Reply::json(200, json!({ "email": 42 })),
    );
    for _ in 0..3 {
        let run = run_manually(&node, "lookup", json!({ "id": "1" })).await;
        assert_eq!(
            run.status,
            RunStatus::Succeeded,
            "warn mode goes on: {:?}",
            run.error
        );
    }
    let store = node.engine.store();
    let recorded = |count: u64| {
        let store = store.clone();
        async move {
            let records = store.list_drift().await.unwrap();
            records.len() == 2 && records.iter().all(|record| record.count == count)
        }
    };
    assert!(
        eventually(Duration::from_secs(10), || recorded(3)).await,
        "{:#?}",
        store.list_drift().await.unwrap()
    );
    let records = store.list_drift().await.unwrap();
    let email = records
        .iter()
        .find(|record| record.kind.pointer == "/email")
        .expect("a record for /email");
    assert_eq!(email.kind.connector, "crm");
    assert_eq!(email.kind.operation, "GET /contacts/{contactId}");
    assert_eq!(email.kind.response, "200");
    assert_eq!(email.kind.expected, "type string");
    assert_eq!(email.seen, "integer");
    assert_eq!(email.example, "42");
    let id = records
        .iter()
        .find(|record| record.kind.pointer.is_empty())
        .expect("a record for the body: `id` missing");
    assert_eq!(id.kind.expected, "required property id");
    assert_eq!(id.seen, "missing");

    // One more reply: the same records, counted.
    run_manually(&node, "lookup", json!({ "id": "1" })).await;
    assert!(eventually(Duration::from_secs(10), || recorded(4)).await);

    let metric = crate::metrics::sample(
        &crate::metrics::scrape(&base).await,
        "patchbay_contract_drift_total",
        &[
            ("connector", "crm"),
            ("operation", "GET /contacts/{contactId}"),
        ],
    );
    assert_eq!(metric, Some(8.0), "two kinds on each of four replies");
    let listed = get_json(&format!("{base}/api/v1/drift")).await;
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(2),
        "{listed}"
    );
    assert_eq!(listed["items"][0]["connector"], "crm", "{listed}");

    // `enforce`: the same reply fails the step, class `contract`, and the
    // call is not repeated.
    let before = upstream.request_count();
    let run = run_manually(&node, "strict", json!({ "id": "1" })).await;
    assert_eq!(run.status, RunStatus::Dead);
    let error = run.error.unwrap_or_default();
    assert!(
        error.contains("breaks connector `strict`'s contract")
            && error.contains("at `/email` expected type string, found integer"),
        "{error}"
    );
    assert_eq!(upstream.request_count(), before + 1, "not retried");
    let journal = store.journal(run.id).await.unwrap();
    assert_eq!(journal[0].error_class.as_deref(), Some("contract"));
}

#[tokio::test]
async fn deprecation_and_sunset_headers_show_on_the_connector_s_health() {
    let upstream = MockUpstream::start().await;
    upstream.route(
        "GET",
        "/contacts/{id}",
        Reply::json(200, json!({ "id": "c-1", "email": "ada@example.com" }))
            .with_header("deprecation", "@1688169599")
            .with_header("sunset", "Wed, 11 Nov 2026 23:59:59 GMT")
            .with_header(
                "link",
                "<https://crm.example.com/changelog>; rel=\"deprecation\"",
            ),
    );
    let project = TestProject::new(DRIFT_ROOT, &[("lookup", LOOKUP)]);
    std::fs::write(project.path().join("crm.yaml"), SPEC).unwrap();
    let node = project.start(&env(&[("UP_URL", upstream.url())])).await;
    let base = format!("http://{}", node.address);

    let before = get_json(&format!("{base}/api/v1/connectors/crm")).await;
    assert!(before["deprecation"].is_null(), "{before}");
    for _ in 0..2 {
        let run = run_manually(&node, "lookup", json!({ "id": "7" })).await;
        assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    }
    let health = get_json(&format!("{base}/api/v1/connectors/crm")).await;
    let notice = &health["deprecation"];
    assert_eq!(notice["endpoint"], "GET /contacts/7", "{health}");
    assert_eq!(notice["deprecated_at"], "2023-06-30T23:59:59Z", "{health}");
    assert_eq!(notice["sunset_at"], "2026-11-11T23:59:59Z", "{health}");
    assert_eq!(
        notice["link"], "https://crm.example.com/changelog",
        "{health}"
    );
    let text = crate::metrics::scrape(&base).await;
    for kind in ["deprecation", "sunset"] {
        assert_eq!(
            crate::metrics::sample(
                &text,
                "patchbay_connector_deprecation_notices_total",
                &[("connector", "crm"), ("kind", kind)],
            ),
            Some(2.0),
            "{kind}"
        );
    }
}

#[tokio::test]
async fn a_pinned_api_version_is_sent_shown_and_held_against_the_spec_s_version() {
    let upstream = MockUpstream::start().await;
    upstream.route(
        "GET",
        "/contacts/{id}",
        Reply::json(200, json!({ "id": "c-1", "email": "ada@example.com" })),
    );
    let project = TestProject::new(
        "connectors:\n  crm:\n    url: \"${env:UP_URL}\"\n    dangerous_allow_private: true\n    \
         spec: crm.yaml\n    api_version: { value: '2', header: X-Api-Version }\n",
        &[("lookup", LOOKUP)],
    );
    std::fs::write(project.path().join("crm.yaml"), SPEC).unwrap();

    let output = std::process::Command::new(crate::support::binary())
        .args(["check", project.path().to_str().unwrap()])
        .env("UP_URL", upstream.url())
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "a warning only: {stderr}");
    assert!(
        stderr.contains(
            "patchbay.yaml:6:18: connector `crm` pins API version 2, but its spec (crm.yaml) describes version 1"
        ),
        "{stderr}"
    );

    let node = project.start(&env(&[("UP_URL", upstream.url())])).await;
    let run = run_manually(&node, "lookup", json!({ "id": "7" })).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    assert_eq!(upstream.requests()[0].header("x-api-version"), Some("2"));
    let health = get_json(&format!("http://{}/api/v1/connectors/crm", node.address)).await;
    assert_eq!(health["api_version"], "2", "{health}");
}

#[tokio::test]
async fn a_new_kind_of_drift_fires_one_drift_alert() {
    let upstream = MockUpstream::start().await;
    // Two kinds of drift on every reply: `email` a number, `id` missing.
    upstream.route(
        "GET",
        "/contacts/{id}",
        Reply::json(200, json!({ "email": 42 })),
    );
    let alerts = "\
trigger:
  event: { on: [drift], connectors: [vendor], window: 1h }
steps:
  - transform: '.'
";
    // A connector of its own: the drift metric is the test process's, and
    // another test counts `crm`'s.
    let root = DRIFT_ROOT.replace("  crm:", "  vendor:");
    let lookup = LOOKUP.replace("call: crm ", "call: vendor ");
    let project = TestProject::new(&root, &[("lookup", &lookup), ("alerts", alerts)]);
    std::fs::write(project.path().join("crm.yaml"), SPEC).unwrap();
    let node = project.start(&env(&[("UP_URL", upstream.url())])).await;
    let store = node.engine.store();
    for _ in 0..5 {
        run_manually(&node, "lookup", json!({ "id": "1" })).await;
    }
    let alert_runs = || {
        let store = store.clone();
        async move {
            crate::support::all_runs(store.as_ref())
                .await
                .into_iter()
                .filter(|run| run.flow == "alerts" && run.status.is_final())
                .collect::<Vec<_>>()
        }
    };
    assert!(
        eventually(Duration::from_secs(10), || async {
            !alert_runs().await.is_empty()
        })
        .await,
        "no drift alert"
    );
    // More replies of the same kinds: recorded, counted, no new alert.
    for _ in 0..3 {
        run_manually(&node, "lookup", json!({ "id": "1" })).await;
    }
    assert!(
        eventually(Duration::from_secs(10), || async {
            store
                .list_drift()
                .await
                .unwrap()
                .iter()
                .all(|r| r.count == 8)
        })
        .await
    );
    let runs = alert_runs().await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    let input = &runs[0].input;
    assert_eq!(input["event"], "drift");
    assert_eq!(input["connector"], "vendor");
    assert_eq!(input["operation"], "GET /contacts/{contactId}");
    assert!(
        ["type string", "required property id"].contains(&input["expected"].as_str().unwrap()),
        "{input}"
    );
    assert_eq!(runs[0].status, RunStatus::Succeeded);
}
