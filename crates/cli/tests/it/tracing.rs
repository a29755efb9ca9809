//! Traces over OTLP from the real binary: a small OTLP/HTTP collector on a
//! loopback port receives the spans; a mock upstream records the
//! `traceparent` it was sent. A webhook arriving with a `traceparent` gets a
//! run span that continues the caller's trace, with a span per step and per
//! upstream call beneath it, and the upstream sees the call span's ids. A
//! webhook without one starts a trace of its own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use patchbay_testkit::{MockUpstream, Reply};
use prost::Message as _;
use serde_json::{Value, json};

use crate::support::{Patchbay, TestProject, patchbay_run, post_json};

const FLOW: &str = "\
trigger: { webhook: { path: /hooks/traced } }
steps:
  - id: ping
    call: up GET /ping
  - id: shape
    transform: '{pinged: $steps.ping.body.ok}'
";

const CALLER_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const CALLER_SPAN: &str = "b7ad6b7169203331";

/// One exported span, as far as these tests look.
#[derive(Clone, Debug)]
struct ExportedSpan {
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    attributes: HashMap<String, String>,
    service: String,
}

/// An OTLP/HTTP (protobuf) trace collector on 127.0.0.1:0.
struct Collector {
    url: String,
    spans: Arc<Mutex<Vec<ExportedSpan>>>,
}

impl Collector {
    async fn start() -> Collector {
        let spans: Arc<Mutex<Vec<ExportedSpan>>> = Arc::default();
        let app = Router::new()
            .route("/v1/traces", post(receive))
            .with_state(spans.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind collector");
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Collector { url, spans }
    }

    fn spans(&self) -> Vec<ExportedSpan> {
        self.spans.lock().unwrap().clone()
    }

    /// Waits until spans named `name` of `trace_id` arrived, and returns
    /// every span of that trace.
    async fn trace(&self, trace_id: &str, names: &[&str]) -> Vec<ExportedSpan> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let trace: Vec<ExportedSpan> = self
                .spans()
                .into_iter()
                .filter(|s| s.trace_id == trace_id)
                .collect();
            if names.iter().all(|n| trace.iter().any(|s| s.name == *n)) {
                return trace;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "trace {trace_id} incomplete, wanted {names:?}; received: {:#?}",
                self.spans()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn receive(State(spans): State<Arc<Mutex<Vec<ExportedSpan>>>>, body: Bytes) -> Vec<u8> {
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP trace export");
    let mut received = Vec::new();
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .map(|kv| text(kv.value.as_ref().and_then(|v| v.value.as_ref())))
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                received.push(ExportedSpan {
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    attributes: span
                        .attributes
                        .iter()
                        .map(|kv| {
                            (
                                kv.key.clone(),
                                text(kv.value.as_ref().and_then(|v| v.value.as_ref())),
                            )
                        })
                        .collect(),
                    service: service.clone(),
                });
            }
        }
    }
    spans.lock().unwrap().extend(received);
    // An empty ExportTraceServiceResponse.
    Vec::new()
}

fn text(value: Option<&AnyValue>) -> String {
    match value {
        Some(AnyValue::StringValue(s)) => s.clone(),
        Some(AnyValue::IntValue(i)) => i.to_string(),
        Some(AnyValue::BoolValue(b)) => b.to_string(),
        Some(AnyValue::DoubleValue(d)) => d.to_string(),
        _ => String::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn one<'a>(spans: &'a [ExportedSpan], name: &str, parent: &str) -> &'a ExportedSpan {
    let found: Vec<&ExportedSpan> = spans
        .iter()
        .filter(|s| s.name == name && s.parent_span_id == parent)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "want one `{name}` span under {parent:?}: {spans:#?}"
    );
    found[0]
}

/// POSTs `{}` to `url` as a call within the caller's span `span` of
/// `trace`, and returns the JSON answer.
async fn post_traced(client: &reqwest::Client, url: &str, trace: &str, span: &str) -> Value {
    client
        .post(url)
        .header("traceparent", format!("00-{trace}-{span}-01"))
        .json(&json!({}))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("a JSON answer")
}

#[tokio::test]
async fn a_run_is_one_trace_continuing_its_caller_and_reaching_the_upstream() {
    let collector = Collector::start().await;
    let up = MockUpstream::start().await;
    up.route("GET", "/ping", Reply::json(200, json!({ "ok": true })));
    let root = format!(
        "\
connectors:
  up:
    url: \"${{env:UP_URL}}\"
    dangerous_allow_private: true
telemetry:
  otlp_endpoint: {}
  service_name: patchbay-test
",
        collector.url
    );
    let project = TestProject::new(&root, &[("traced", FLOW)]);
    let log = project.path().join("patchbay.log");
    let mut command = patchbay_run(
        project.path(),
        &[
            ("UP_URL", up.url()),
            // Export every 50 ms rather than every 5 s.
            ("OTEL_BSP_SCHEDULE_DELAY", "50".to_string()),
        ],
    );
    command.args(["--log-format", "json"]);
    let node = Patchbay::spawn(command, &log);
    let client = reqwest::Client::new();

    // Continuing the caller's trace.
    let accepted = post_traced(
        &client,
        &format!("{}/hooks/traced", node.base),
        CALLER_TRACE,
        CALLER_SPAN,
    )
    .await;
    let run_id = accepted["run_id"].as_str().expect("run id").to_string();
    let trace = collector
        .trace(CALLER_TRACE, &["run", "step", "upstream call"])
        .await;
    let run = one(&trace, "run", CALLER_SPAN);
    assert_eq!(run.attributes["run_id"], run_id);
    assert_eq!(run.attributes["flow"], "traced");
    assert_eq!(run.service, "patchbay-test");
    let ping = trace
        .iter()
        .find(|s| {
            s.name == "step" && s.parent_span_id == run.span_id && s.attributes["step"] == "ping"
        })
        .unwrap_or_else(|| panic!("no `ping` step span under the run: {trace:#?}"));
    assert_eq!(ping.attributes["kind"], "call");
    let call = one(&trace, "upstream call", &ping.span_id);
    assert_eq!(call.attributes["connector"], "up");
    assert_eq!(call.attributes["http.request.method"], "GET");
    assert_eq!(call.attributes["url.path"], "/ping");
    assert_eq!(call.attributes["http.response.status_code"], "200");
    let steps: Vec<&str> = trace
        .iter()
        .filter(|s| s.name == "step" && s.parent_span_id == run.span_id)
        .map(|s| s.attributes["step"].as_str())
        .collect();
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert!(steps.contains(&"shape"), "{steps:?}");

    // The upstream was handed the call span's ids.
    let requests = up.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].header("traceparent"),
        Some(format!("00-{CALLER_TRACE}-{}-01", call.span_id).as_str())
    );

    // Without a caller's trace, the run starts its own.
    let response = post_json(&format!("{}/hooks/traced", node.base), &json!({})).await;
    assert_eq!(response.status(), 202);
    let second: Value = response.json().await.unwrap();
    let second_id = second["run_id"].as_str().unwrap().to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let own = loop {
        let found = collector
            .spans()
            .into_iter()
            .find(|s| s.name == "run" && s.attributes.get("run_id") == Some(&second_id));
        if let Some(found) = found {
            break found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no span for the second run"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_ne!(own.trace_id, CALLER_TRACE);
    assert_eq!(own.parent_span_id, "", "a root span");
    let sent = up.requests()[1]
        .header("traceparent")
        .expect("a traceparent")
        .to_string();
    assert!(sent.starts_with(&format!("00-{}-", own.trace_id)), "{sent}");

    // A run started by hand through the API continues its caller's trace too.
    let manual_trace = "5bf92f3577b34da6a3ce929d0e0e4736";
    let manual_span = "a2fb4a1d1a96d312";
    let started = post_traced(
        &client,
        &format!("{}/api/v1/flows/traced/runs", node.base),
        manual_trace,
        manual_span,
    )
    .await;
    let manual = collector.trace(manual_trace, &["run"]).await;
    let manual_run = one(&manual, "run", manual_span);
    assert_eq!(
        manual_run.attributes["run_id"],
        started["run_id"].as_str().unwrap()
    );

    // JSON log lines of a traced run carry its trace id.
    node.terminate();
    let log_text = std::fs::read_to_string(&log).unwrap();
    let traced_line = log_text
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| line["run_id"] == run_id.as_str() && line["message"] == "run finished")
        .expect("a `run finished` line for the first run");
    assert_eq!(traced_line["trace_id"], CALLER_TRACE, "{traced_line}");
}

#[test]
fn check_refuses_a_bad_telemetry_section() {
    let project = TestProject::new(
        "\
telemetry:
  otlp_endpoint: collector:4318
  sample_ratio: 1.5
  redact_headers: [\"not a header\"]
",
        &[],
    );
    let output = std::process::Command::new(crate::support::binary())
        .arg("check")
        .arg(project.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    for expected in [
        "telemetry.otlp_endpoint `collector:4318` must be an http:// or https:// URL",
        "telemetry.sample_ratio must be between 0 and 1, not 1.5",
        "telemetry.redact_headers: `not a header` is not a header name",
    ] {
        assert!(stderr.contains(expected), "{expected:?} not in:\n{stderr}");
    }
}
