//! Run-level retries, dead letters and replay, and step error policies
//! (`on_error`), end to end: a node, mock upstreams, the `patchbay` binary.

use std::time::Duration;

use patchbay_store::{RunId, RunStatus, StepStatus};
use patchbay_testkit::{MockUpstream, Reply};
use serde_json::{Value, json};

use crate::support::{
    ORDER_FLOW, SHOP_CONNECTORS, TestProject, env, eventually, patchbay, post_json,
};

/// The shop's connectors, `chat`'s breaker off: these tests are about run
/// retries and replay; the breaker, which would open on chat's outage and
/// outlast it, has tests of its own below.
fn root() -> String {
    format!("{SHOP_CONNECTORS}    circuit_breaker: off\n")
}

/// The shop's order flow, retried twice at run level.
fn order_flow() -> String {
    format!("{ORDER_FLOW}run_retries: [100ms, 100ms]\n")
}

struct Upstreams {
    payments: MockUpstream,
    chat: MockUpstream,
}

async fn upstreams() -> Upstreams {
    let payments = MockUpstream::start().await;
    payments.route(
        "POST",
        "/charges",
        Reply::json(201, json!({ "id": "ch_1" })),
    );
    payments.idempotent("POST", "/charges");
    let chat = MockUpstream::start().await;
    chat.route("POST", "/messages", Reply::status(503));
    Upstreams { payments, chat }
}

impl Upstreams {
    fn env(&self) -> patchbay_config::MapEnv {
        env(&[
            ("PAY_URL", self.payments.url()),
            ("CHAT_URL", self.chat.url()),
        ])
    }
}

async fn order(address: std::net::SocketAddr, amount: u64) -> RunId {
    let response = post_json(
        &format!("http://{address}/hooks/order"),
        &json!({ "amount": amount }),
    )
    .await;
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    body["run_id"].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn exhausted_retries_leave_a_dead_run_that_replay_completes_once() {
    let up = upstreams().await;
    let project = TestProject::new(&root(), &[("order", &order_flow())]);
    let node = project.start(&up.env()).await;
    let store = node.engine.store();

    let id = order(node.address, 100).await;
    let run = node
        .engine
        .wait_for(id, Duration::from_secs(15))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.status, RunStatus::Dead);
    assert_eq!(run.retries, 2);
    let error = run.error.unwrap();
    assert!(
        error.contains("step `notify` (call)")
            && error.contains("503")
            && error.contains("after 2 attempts")
            && error.contains("retried 2 times"),
        "{error}"
    );
    // The first run attempt and both retries are journalled; the charge ran
    // once, its result reused by the retries.
    let journal = store.journal(id).await.unwrap();
    let notify: Vec<_> = journal.iter().filter(|e| e.step_id == "notify").collect();
    assert_eq!(notify.len(), 3);
    assert!(notify.iter().all(|e| e.status == StepStatus::Failed));
    assert_eq!(
        notify.iter().map(|e| e.attempt).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(up.chat.request_count(), 6, "2 calls per run attempt");
    assert_eq!(up.payments.request_count(), 1);

    // Dead letters are listed by the CLI, and replayed once the upstream is back.
    let dir = project.path().to_str().unwrap();
    let listed = patchbay(&["runs", "list", "-p", dir, "--status", "dead", "--json"]);
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed["items"][0]["id"], id.to_string());
    up.chat
        .route("POST", "/messages", Reply::json(200, json!({ "ok": true })));
    let replay = patchbay(&["runs", "replay", &id.to_string(), "-p", dir]);
    assert_eq!(
        replay.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&replay.stdout).trim(),
        id.to_string()
    );
    assert!(
        eventually(Duration::from_secs(30), || async {
            store.run(id).await.unwrap().unwrap().status == RunStatus::Succeeded
        })
        .await
    );
    let charged = format!("{id}:charge");
    assert_eq!(up.payments.side_effects(&charged), 1);
    assert_eq!(up.payments.request_count(), 1, "resumed at the failed step");
    let sent = up.chat.requests_to("POST", "/messages");
    assert_eq!(
        sent.last().unwrap().json.clone().unwrap(),
        json!({ "text": "charged ch_1" })
    );

    // Replaying a run that is not dead changes nothing and says so.
    let again = patchbay(&["runs", "replay", &id.to_string(), "-p", dir]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("it is succeeded"));
    node.stop().await.unwrap();
}

#[tokio::test]
async fn bulk_replay_from_the_start_repeats_no_side_effect() {
    let up = upstreams().await;
    let project = TestProject::new(&root(), &[("order", &order_flow())]);
    let node = project.start(&up.env()).await;
    let store = node.engine.store();
    let mut ids = Vec::new();
    for amount in 1..=3 {
        ids.push(order(node.address, amount).await);
    }
    for id in &ids {
        let run = node
            .engine
            .wait_for(*id, Duration::from_secs(15))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(run.status, RunStatus::Dead);
    }
    up.chat
        .route("POST", "/messages", Reply::json(200, json!({ "ok": true })));
    let dir = project.path().to_str().unwrap();
    let replay = patchbay(&[
        "runs",
        "replay",
        "--status",
        "dead",
        "--flow",
        "order",
        "--from-start",
        "-p",
        dir,
    ]);
    assert_eq!(
        replay.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    assert!(String::from_utf8_lossy(&replay.stderr).contains("replayed 3 of 3"));
    for id in &ids {
        let succeeded = eventually(Duration::from_secs(30), || async {
            store.run(*id).await.unwrap().unwrap().status == RunStatus::Succeeded
        })
        .await;
        let run = store.run(*id).await.unwrap().unwrap();
        assert!(
            succeeded,
            "{:?} {:?} retries {}",
            run.status, run.error, run.retries
        );
        // From the start: the charge was sent again, with the same key, and
        // the upstream recognised it.
        assert_eq!(up.payments.side_effects(&format!("{id}:charge")), 1);
        let journal = store.journal(*id).await.unwrap();
        let charges: Vec<bool> = journal
            .iter()
            .filter(|e| e.step_id == "charge")
            .map(|e| e.current)
            .collect();
        assert_eq!(charges, vec![false, true]);
    }
    assert_eq!(up.payments.request_count(), 6);
    assert_eq!(up.payments.replays(), 3);
    assert_eq!(up.payments.side_effects_total(), 3);
    node.stop().await.unwrap();
}

#[tokio::test]
async fn a_permanent_error_is_dead_at_once_and_on_error_fail_skips_retries() {
    let up = upstreams().await;
    up.payments.route(
        "POST",
        "/refused",
        Reply::json(422, json!({ "error": "bad" })),
    );
    let flows = [
        (
            "refused",
            "trigger: { manual: {} }\nrun_retries: [5s]\nsteps:\n  - call: payments POST /refused\n",
        ),
        (
            "failfast",
            "trigger: { manual: {} }\nrun_retries: [5s]\nsteps:\n  - call: chat POST /messages\n    on_error: fail\n",
        ),
    ];
    let project = TestProject::new(&root(), &flows);
    let node = project.start(&up.env()).await;
    for flow in ["refused", "failfast"] {
        let run = crate::support::run_manually(&node, flow, json!({})).await;
        assert_eq!(run.status, RunStatus::Dead, "{flow}");
        assert_eq!(run.retries, 0, "{flow}: no run-level retry");
    }
    node.stop().await.unwrap();
}

#[tokio::test]
async fn continue_records_the_error_and_goes_on() {
    let up = upstreams().await;
    let flow = "\
trigger: { manual: {} }
steps:
  - id: notify
    call: chat POST /messages
    body: '{}'
    on_error: continue
  - transform: '{notified: ($steps.notify.error == null), why: $steps.notify.error}'
";
    let project = TestProject::new(&root(), &[("tolerant", flow)]);
    let node = project.start(&up.env()).await;
    let run = crate::support::run_manually(&node, "tolerant", json!({})).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    let output = run.output.unwrap();
    assert_eq!(output["notified"], false);
    assert!(output["why"].as_str().unwrap().contains("503"), "{output}");
    let journal = node.engine.store().journal(run.id).await.unwrap();
    let statuses: Vec<_> = journal
        .iter()
        .filter(|e| e.step_id == "notify")
        .map(|e| e.status)
        .collect();
    assert_eq!(statuses, vec![StepStatus::Failed, StepStatus::Succeeded]);
    node.stop().await.unwrap();
}

#[tokio::test]
async fn an_open_breaker_hands_over_to_the_fallback_at_once() {
    let primary = MockUpstream::start().await;
    primary.route("POST", "/charges", Reply::status(503));
    let backup = MockUpstream::start().await;
    backup.route_fn("POST", "/charges", |request| {
        Reply::json(
            201,
            json!({ "id": "bk_1", "amount": request.json.as_ref().unwrap()["amount"] }),
        )
    });
    let root = "\
connectors:
  payments:
    url: \"${env:PAY_URL}\"
    dangerous_allow_private: true
    retry: { attempts: 1 }
    circuit_breaker: { min_calls: 3, failure_rate: 50%, window: 60s, open_for: 60s }
  backup:
    url: \"${env:BACKUP_URL}\"
    dangerous_allow_private: true
";
    let flow = "\
trigger: { manual: {} }
steps:
  - id: charge
    call: payments POST /charges
    body: '{amount}'
    on_error:
      fallback:
        - call: backup POST /charges
          body: '{amount}'
  - transform: '$steps.charge.body'
";
    let project = TestProject::new(root, &[("pay", flow)]);
    let node = project
        .start(&env(&[
            ("PAY_URL", primary.url()),
            ("BACKUP_URL", backup.url()),
        ]))
        .await;
    for amount in 0..10 {
        let run = crate::support::run_manually(&node, "pay", json!({ "amount": amount })).await;
        assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
        assert_eq!(
            run.output.unwrap(),
            json!({ "id": "bk_1", "amount": amount })
        );
    }
    // Three failures opened the breaker; the other seven runs went straight
    // to the backup without touching the failing upstream.
    assert_eq!(primary.request_count(), 3);
    assert_eq!(backup.request_count(), 10);
    node.stop().await.unwrap();
}

#[tokio::test]
async fn runs_wait_out_an_outage_behind_the_breaker_and_all_succeed() {
    let upstream = MockUpstream::start().await;
    upstream.route("POST", "/charges", Reply::status(503));
    let root = "\
connectors:
  payments:
    url: \"${env:PAY_URL}\"
    dangerous_allow_private: true
    retry: { attempts: 1 }
    circuit_breaker: { min_calls: 4, failure_rate: 50%, window: 60s, open_for: 300ms }
";
    let flow = "\
trigger: { webhook: { path: /hooks/pay } }
run_retries: [200ms, 400ms, 800ms, 1s, 1s, 1s, 1s, 1s]
steps:
  - call: payments POST /charges
    body: '{amount}'
";
    let project = TestProject::new(root, &[("pay", flow)]);
    let node = project.start(&env(&[("PAY_URL", upstream.url())])).await;
    let store = node.engine.store();
    let mut ids = Vec::new();
    for amount in 0..20 {
        let response = post_json(
            &format!("http://{}/hooks/pay", node.address),
            &json!({ "amount": amount }),
        )
        .await;
        let body: Value = response.json().await.unwrap();
        ids.push(body["run_id"].as_str().unwrap().parse::<RunId>().unwrap());
    }
    // The outage lasts a while. Once a few calls have failed, the breaker
    // fails the runs' calls fast and they are rescheduled without touching
    // the upstream; only its half-open probes get through.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let during_outage = upstream.request_count();
    println!("requests during the outage: {during_outage} (20 runs)");
    upstream.route("POST", "/charges", Reply::json(201, json!({ "id": "ch" })));
    for id in &ids {
        let run = node
            .engine
            .wait_for(*id, Duration::from_secs(20))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    }
    let retried = ids.len() as u32;
    let mut total_retries = 0;
    for id in &ids {
        total_retries += store.run(*id).await.unwrap().unwrap().retries;
    }
    assert!(
        total_retries >= retried,
        "every run was rescheduled at least once"
    );
    // Without the breaker the 20 runs and their retries (after 200, 400 and
    // 800 ms) would have sent about 80 requests by then; with it, the 4
    // failures that opened it and a probe every 300 ms at most.
    assert!(
        during_outage <= 12,
        "{during_outage} requests reached the upstream during the outage"
    );
    node.stop().await.unwrap();
}
