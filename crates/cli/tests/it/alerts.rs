//! Alert flows (`trigger: { event: … }`) through the real binary: an outage
//! of a payment upstream kills 100 runs and opens the connector's circuit
//! breaker; the alert flow runs once for the deaths (naming the flow and
//! the error) and once for the opening, not a hundred times; the upstream
//! healed, the breaker closes and the alert flow runs once more.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use patchbay_store::{Run, RunStatus};
use patchbay_testkit::{MockUpstream, Reply};
use serde_json::json;

use crate::brokers::start_node;
use crate::support::{TestProject, all_runs, eventually};

const ROOT: &str = "\
connectors:
  pay:
    url: ${env:PAY_URL}
    dangerous_allow_private: true
    retry: { attempts: 1 }
    circuit_breaker: { failure_rate: 50%, min_calls: 10, window: 60s, open_for: 1s }
engine: { run_retries: [] }
";

const ORDERS: &str = "\
trigger: { webhook: { path: /hooks/orders } }
steps:
  - id: charge
    call: pay POST /charge
    body: '{order: .id}'
";

const ALERTS: &str = "\
trigger:
  event: { on: [run_dead, breaker_open, breaker_closed], window: 1h }
steps:
  - transform: '.'
";

/// What an assertion shows of alert runs: how many, and the first inputs.
fn summary(runs: &[Run]) -> String {
    let inputs: Vec<String> = runs
        .iter()
        .take(3)
        .map(|run| run.input.to_string())
        .collect();
    format!("{} runs: {}", runs.len(), inputs.join(", "))
}

fn alert_runs(runs: &[Run], event: &str) -> Vec<Run> {
    runs.iter()
        .filter(|run| run.flow == "alerts" && run.input["event"] == event)
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_fires_one_alert_per_event_not_one_per_death() {
    let pay = MockUpstream::start().await;
    let healthy = Arc::new(AtomicBool::new(false));
    let up = healthy.clone();
    pay.route_fn("POST", "/charge", move |_| {
        if up.load(Ordering::SeqCst) {
            Reply::json(200, json!({ "charged": true }))
        } else {
            Reply::json(503, json!({ "error": "down for maintenance" }))
        }
    });
    let project = TestProject::new(ROOT, &[("orders", ORDERS), ("alerts", ALERTS)]);
    let node = start_node(&project, &[("PAY_URL", pay.url())]);
    let client = reqwest::Client::new();
    let post = |id: u32| {
        let client = client.clone();
        let url = format!("{}/hooks/orders", node.base);
        async move {
            let answer = client.post(url).json(&json!({ "id": id })).send().await;
            assert_eq!(answer.expect("webhook sent").status(), 202);
        }
    };
    for id in 0..100 {
        post(id).await;
    }
    let store = project.open_store().await;
    let all_dead = eventually(Duration::from_secs(30), || async {
        let runs = all_runs(&*store).await;
        runs.iter()
            .filter(|run| run.flow == "orders" && run.status == RunStatus::Dead)
            .count()
            == 100
    })
    .await;
    assert!(all_dead, "the 100 orders did not all die");
    let alerted = eventually(Duration::from_secs(10), || async {
        let runs = all_runs(&*store).await;
        !alert_runs(&runs, "run_dead").is_empty() && !alert_runs(&runs, "breaker_open").is_empty()
    })
    .await;
    assert!(alerted, "no alert for the deaths or the opening");

    // Healed: the breaker probes once it has been open for `open_for`,
    // and closes on a success.
    healthy.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    post(100).await;
    let closed = eventually(Duration::from_secs(10), || async {
        !alert_runs(&all_runs(&*store).await, "breaker_closed").is_empty()
    })
    .await;
    assert!(closed, "no alert for the breaker closing");
    // Time for any further alert to show up.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let runs = all_runs(&*store).await;
    let deaths = alert_runs(&runs, "run_dead");
    assert_eq!(deaths.len(), 1, "{}", summary(&deaths));
    let death = &deaths[0];
    assert_eq!(death.status, RunStatus::Succeeded);
    assert_eq!(death.trigger, "event");
    assert_eq!(death.input["flow"], "orders");
    let dead_run = death.input["run"].as_str().unwrap();
    assert!(
        runs.iter()
            .any(|run| run.id.to_string() == dead_run && run.status == RunStatus::Dead),
        "the alert names no dead run: {}",
        death.input
    );
    assert!(
        death.input["error"]
            .as_str()
            .unwrap_or_default()
            .contains("503"),
        "{}",
        death.input
    );
    let openings = alert_runs(&runs, "breaker_open");
    assert_eq!(openings.len(), 1, "{}", summary(&openings));
    assert_eq!(openings[0].input["connector"], "pay");
    let closings = alert_runs(&runs, "breaker_closed");
    assert_eq!(closings.len(), 1, "{}", summary(&closings));
    assert_eq!(closings[0].input["connector"], "pay");
    node.stop_cleanly();
}

/// A connector whose calls fail too often fires `error_rate` once, with
/// the rate and the number of calls, and a rate under the threshold fires
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_failing_too_often_fires_one_error_rate_alert() {
    let api = MockUpstream::start().await;
    let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = calls.clone();
    api.route_fn("POST", "/work", move |_| {
        // Three calls of five fail.
        if counted.fetch_add(1, Ordering::SeqCst) % 5 < 3 {
            Reply::json(500, json!({ "error": "boom" }))
        } else {
            Reply::json(200, json!({ "ok": true }))
        }
    });
    let calm_calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let calm_counted = calm_calls.clone();
    api.route_fn("POST", "/calm", move |_| {
        // One call of five fails: under the threshold.
        if calm_counted
            .fetch_add(1, Ordering::SeqCst)
            .is_multiple_of(5)
        {
            Reply::json(500, json!({ "error": "blip" }))
        } else {
            Reply::json(200, json!({ "ok": true }))
        }
    });
    let root = "\
connectors:
  api: { url: \"${env:API_URL}\", dangerous_allow_private: true, retry: { attempts: 1 }, circuit_breaker: off }
  calm: { url: \"${env:API_URL}\", dangerous_allow_private: true, retry: { attempts: 1 }, circuit_breaker: off }
engine: { run_retries: [] }
";
    let work = "\
trigger: { webhook: { path: /hooks/work } }
steps:
  - call: calm POST /calm
    on_error: continue
  - call: api POST /work
";
    let alerts = "\
trigger:
  event: { on: [error_rate], error_rate: 40%, window: 1h }
steps:
  - transform: '.'
";
    let project = TestProject::new(root, &[("work", work), ("alerts", alerts)]);
    let node = start_node(&project, &[("API_URL", api.url())]);
    let client = reqwest::Client::new();
    for id in 0..20 {
        let answer = client
            .post(format!("{}/hooks/work", node.base))
            .json(&json!({ "id": id }))
            .send()
            .await
            .expect("webhook sent");
        assert_eq!(answer.status(), 202);
    }
    let store = project.open_store().await;
    // The rates are read every 5 s.
    let alerted = eventually(Duration::from_secs(15), || async {
        !alert_runs(&all_runs(&*store).await, "error_rate").is_empty()
    })
    .await;
    assert!(alerted, "no error_rate alert");
    // Two more readings: the window keeps them quiet.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let rates = alert_runs(&all_runs(&*store).await, "error_rate");
    assert_eq!(rates.len(), 1, "{}", summary(&rates));
    let input = &rates[0].input;
    assert_eq!(input["connector"], "api");
    assert_eq!(input["calls"], 20);
    assert_eq!(input["error_rate"], 60.0);
    assert_eq!(calm_calls.load(Ordering::SeqCst), 20);
    node.stop_cleanly();
}

/// A connector keying its breakers by endpoint: one endpoint failing opens
/// its own breaker (and alerts once, naming it) while a flow calling
/// another endpoint of the same connector goes on succeeding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failing_endpoint_opens_only_its_own_breaker() {
    let crm = MockUpstream::start().await;
    crm.route(
        "GET",
        "/orders/{id}",
        Reply::json(500, json!({ "error": "bug" })),
    );
    crm.route("GET", "/status", Reply::json(200, json!({ "ok": true })));
    let root = "\
connectors:
  crm:
    url: ${env:CRM_URL}
    dangerous_allow_private: true
    retry: { attempts: 1 }
    circuit_breaker: { min_calls: 4, window: 60s, open_for: 10m, key: '\"\\(.method) \\(.path)\"' }
engine: { run_retries: [] }
";
    let lookup = "\
trigger: { webhook: { path: /hooks/lookup } }
steps:
  - call: crm GET /orders/{.id}
";
    let status = "\
trigger: { webhook: { path: /hooks/status } }
steps:
  - call: crm GET /status
";
    let project = TestProject::new(
        root,
        &[("lookup", lookup), ("status", status), ("alerts", ALERTS)],
    );
    let node = start_node(&project, &[("CRM_URL", crm.url())]);
    let client = reqwest::Client::new();
    let post = |hook: &'static str, id: u32| {
        let client = client.clone();
        let url = format!("{}/hooks/{hook}", node.base);
        async move {
            let answer = client.post(url).json(&json!({ "id": id })).send().await;
            assert_eq!(answer.expect("webhook sent").status(), 202);
        }
    };
    // One at a time, so exactly the first four reach the upstream: runs
    // side by side could all be sent before the fourth failure opens it.
    let store = project.open_store().await;
    for id in 0..6 {
        post("lookup", id).await;
        let ended = eventually(Duration::from_secs(30), || async {
            all_runs(&*store)
                .await
                .iter()
                .filter(|run| run.flow == "lookup" && run.status.is_final())
                .count()
                == id as usize + 1
        })
        .await;
        assert!(ended, "lookup {id} did not end");
    }
    let opened = eventually(Duration::from_secs(30), || async {
        let runs = all_runs(&*store).await;
        runs.iter()
            .filter(|run| run.flow == "lookup" && run.status == RunStatus::Dead)
            .count()
            == 6
            && !alert_runs(&runs, "breaker_open").is_empty()
    })
    .await;
    assert!(opened, "the lookups did not all die, or no alert");
    for id in 0..5 {
        post("status", id).await;
    }
    let fine = eventually(Duration::from_secs(30), || async {
        let runs = all_runs(&*store).await;
        runs.iter()
            .filter(|run| run.flow == "status" && run.status.is_final())
            .count()
            == 5
    })
    .await;
    assert!(fine, "the status runs did not end");
    let runs = all_runs(&*store).await;
    for run in runs.iter().filter(|run| run.flow == "status") {
        assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    }
    // The last two lookups met the open breaker, which names its key.
    let refused: Vec<&Run> = runs
        .iter()
        .filter(|run| {
            run.flow == "lookup"
                && run
                    .error
                    .as_deref()
                    .is_some_and(|e| e.contains("circuit breaker `GET /orders/{.id}` open"))
        })
        .collect();
    assert_eq!(
        refused.len(),
        2,
        "{:?}",
        runs.iter().map(|r| &r.error).collect::<Vec<_>>()
    );
    assert_eq!(crm.requests_to("GET", "/orders/{id}").len(), 4);
    let openings = alert_runs(&runs, "breaker_open");
    assert_eq!(openings.len(), 1, "{}", summary(&openings));
    assert_eq!(openings[0].input["connector"], "crm");
    assert_eq!(openings[0].input["key"], "GET /orders/{.id}");

    // The health API lists each breaker, the open one first.
    let health: serde_json::Value = client
        .get(format!("{}/api/v1/connectors/crm", node.base))
        .send()
        .await
        .expect("connector health")
        .json()
        .await
        .unwrap();
    let breaker = &health["breaker"];
    assert_eq!(breaker["state"], "open", "{health}");
    let keyed = breaker["keyed"].as_array().expect("keyed breakers");
    assert_eq!(keyed.len(), 2, "{health}");
    assert_eq!(keyed[0]["key"], "GET /orders/{.id}");
    assert_eq!(keyed[0]["state"], "open");
    assert_eq!(keyed[1]["key"], "GET /status");
    assert_eq!(keyed[1]["state"], "closed");
    assert_eq!(keyed[1]["calls_in_window"], 5);
    node.stop_cleanly();
}
