//! Which response headers a call's result keeps: none unless the flow may
//! read them or its connector names them, in the run as in the journal.

use patchbay_store::RunStatus;
use patchbay_testkit::{MockUpstream, Reply};
use serde_json::{Value, json};

use crate::support::{TestProject, env, run_manually};

const ROOT: &str = "\
connectors:
  quiet:
    url: \"${env:UP_URL}\"
    dangerous_allow_private: true
  named:
    url: \"${env:UP_URL}\"
    dangerous_allow_private: true
    response_headers: [ETag]
  everything:
    url: \"${env:UP_URL}\"
    dangerous_allow_private: true
    response_headers: true
";

/// Each flow calls the upstream once; `reads` also reads a header after.
const FLOWS: [(&str, &str); 4] = [
    (
        "plain",
        "trigger: { manual: {} }\nsteps:\n  - id: up\n    call: quiet GET /thing\n",
    ),
    (
        "reads",
        "trigger: { manual: {} }\nsteps:\n  - id: up\n    call: quiet GET /thing\n  \
         - transform: '$steps.up.headers.etag'\n",
    ),
    (
        "named",
        "trigger: { manual: {} }\nsteps:\n  - id: up\n    call: named GET /thing\n",
    ),
    (
        "everything",
        "trigger: { manual: {} }\nsteps:\n  - id: up\n    call: everything GET /thing\n",
    ),
];

#[tokio::test]
async fn a_result_keeps_the_headers_its_flow_reads_or_its_connector_names() {
    let upstream = MockUpstream::start().await;
    upstream.route(
        "GET",
        "/thing",
        Reply::json(200, json!({ "id": 7 }))
            .with_header("etag", "\"v7\"")
            .with_header("x-request-id", "r-1"),
    );
    let project = TestProject::new(ROOT, &FLOWS);
    let node = project.start(&env(&[("UP_URL", upstream.url())])).await;

    let mut kept = Vec::new();
    for (flow, _) in FLOWS {
        let run = run_manually(&node, flow, json!({})).await;
        assert_eq!(run.status, RunStatus::Succeeded, "{flow}: {:?}", run.error);
        let journal = node.engine.store().journal(run.id).await.unwrap();
        let call = journal[0].output.clone().expect("the call's output");
        assert_eq!(call["status"], 200, "{flow}: {call}");
        assert_eq!(call["body"], json!({ "id": 7 }), "{flow}: {call}");
        let names: Vec<String> = call
            .get("headers")
            .and_then(Value::as_object)
            .map(|headers| headers.keys().cloned().collect())
            .unwrap_or_default();
        kept.push((
            flow,
            names.contains(&"etag".to_string()),
            names.contains(&"x-request-id".to_string()),
            call.get("headers").is_some(),
        ));
        if flow == "reads" {
            assert_eq!(run.output, Some(json!("\"v7\"")), "the header was read");
        }
    }
    assert_eq!(
        kept,
        [
            ("plain", false, false, false),
            ("reads", true, true, true),
            ("named", true, false, true),
            ("everything", true, true, true),
        ]
    );
    node.stop().await.unwrap();
}
