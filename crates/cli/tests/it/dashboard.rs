//! The dashboard in a real browser: the `patchbay` binary serves a project
//! whose flow calls two mock upstreams, and `ui-tests/dashboard.test.mjs`
//! (node's test runner driving Debian's chromium through playwright-core)
//! follows a run, makes an upstream fail, finds the dead letter, fixes the
//! upstream, replays it from the dashboard and reads the overview charts.
//!
//! The browser and node packages are installed by `scripts/setup-browser`
//! when missing. Without chromium or node the test fails when `CI=true`
//! and is skipped, saying why, elsewhere. Screenshots of every page go to
//! `target/ui-screenshots/` (or `$PATCHBAY_UI_SCREENSHOTS`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use patchbay_testkit::{MockUpstream, Reply};
use serde_json::json;

use crate::support::{ORDER_FLOW, Patchbay, SHOP_CONNECTORS, TestProject, patchbay_run};

const CHROMIUM: &str = "/usr/bin/chromium";

/// The shop's connectors, chat with a pinned version and a contract its
/// replies do not quite fit; the dashboard signs in with an `operate`
/// token: enough to replay.
fn root_config() -> String {
    let connectors = SHOP_CONNECTORS.replace(
        "  chat:\n",
        "  chat:\n    api_version: { value: '2024-06-20', header: Chat-Version }\n    spec: chat.yaml\n",
    );
    format!(
        "{connectors}\
api:
  tokens:
    - {{ name: dashboard, token: \"${{env:PB_UI_TOKEN}}\", scopes: [operate] }}
"
    )
}

/// Chat's contract: its replies should carry `ts`, which the mock's lack.
const CHAT_SPEC: &str = "\
openapi: 3.0.3
info: { title: Chat, version: '2024-06-20' }
paths:
  /messages:
    post:
      responses:
        '200':
          description: Sent.
          content:
            application/json:
              schema:
                type: object
                required: [ok, ts]
                properties: { ok: { type: boolean }, ts: { type: string } }
";

/// A flow whose runs wait an hour: the run page says until when.
const REMIND_FLOW: &str = "\
trigger: { webhook: { path: /hooks/remind } }
steps:
  - wait: 1h
  - transform: '.'
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_follows_runs_dead_letters_and_replay_in_a_browser() {
    let root = workspace_root();
    if !browser_ready(&root) {
        return;
    }

    let payments = MockUpstream::start().await;
    payments.route(
        "POST",
        "/charges",
        Reply::json(201, json!({ "id": "ch_1" })),
    );
    let chat = MockUpstream::start().await;
    let failing = Arc::new(AtomicBool::new(false));
    let flag = failing.clone();
    chat.route_fn("POST", "/messages", move |_| {
        if flag.load(Ordering::SeqCst) {
            Reply::json(400, json!({ "error": "unknown channel" }))
        } else {
            Reply::json(200, json!({ "ok": true }))
                .with_header("sunset", "Wed, 11 Nov 2026 23:59:59 GMT")
                .with_header(
                    "link",
                    "<https://chat.example.com/changelog>; rel=\"sunset\"",
                )
        }
    });
    // The browser test switches the upstream through these.
    for (path, fail) in [("/control/fail", true), ("/control/fix", false)] {
        let flag = failing.clone();
        chat.route_fn("POST", path, move |_| {
            flag.store(fail, Ordering::SeqCst);
            Reply::json(200, json!({ "failing": fail }))
        });
    }

    let token: String = std::iter::repeat_with(fastrand::alphanumeric)
        .take(32)
        .collect();
    // A `400` from chat is permanent: the run goes dead at once.
    let project = TestProject::new(
        &root_config(),
        &[("order", ORDER_FLOW), ("remind", REMIND_FLOW)],
    );
    std::fs::write(project.path().join("chat.yaml"), CHAT_SPEC).unwrap();
    let log = project.path().join("patchbay.log");
    let node = Patchbay::spawn(
        patchbay_run(
            project.path(),
            &[
                ("PAY_URL", payments.url()),
                ("CHAT_URL", chat.url()),
                ("PB_UI_TOKEN", token.clone()),
            ],
        ),
        &log,
    );

    let screenshots = std::env::var_os("PATCHBAY_UI_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target").join("ui-screenshots"));
    let mut command = Command::new("node");
    command
        .args([
            "--test",
            "--test-reporter=spec",
            "--test-timeout=300000",
            "dashboard.test.mjs",
        ])
        .current_dir(root.join("ui-tests"))
        .env("PATCHBAY_URL", &node.base)
        .env("PATCHBAY_TOKEN", &token)
        .env("PATCHBAY_WEBHOOK", format!("{}/hooks/order", node.base))
        .env("PATCHBAY_REMIND", format!("{}/hooks/remind", node.base))
        .env("PATCHBAY_MOCK_CONTROL", format!("{}/control", chat.url()))
        .env("PATCHBAY_SCREENSHOTS", &screenshots)
        .env("CHROMIUM", CHROMIUM);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("the node task ends")
        .expect("node runs");
    let status = node.terminate();

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser test failed ({}):\n{stdout}\n{stderr}\n--- patchbay log:\n{}",
        output.status,
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    println!("{stdout}");
    println!("screenshots in {}", screenshots.display());
    assert!(status.success(), "patchbay exited with {status}");
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the cli crate sits two levels below the workspace")
        .to_path_buf()
}

/// Whether chromium, node and the ui-tests packages are there, after
/// `scripts/setup-browser` installed what was missing. When they are not:
/// a failure under `CI=true`, a skip with the reason elsewhere.
fn browser_ready(root: &Path) -> bool {
    let missing = |root: &Path| {
        let mut missing = Vec::new();
        if !Path::new(CHROMIUM).exists() {
            missing.push(CHROMIUM.to_string());
        }
        if !works("node") {
            missing.push("node".to_string());
        }
        if !root.join("ui-tests/node_modules/playwright-core").exists() {
            missing.push("ui-tests/node_modules (npm ci)".to_string());
        }
        missing
    };
    let mut setup = None;
    if !missing(root).is_empty() {
        setup = Some(
            Command::new(root.join("scripts/setup-browser"))
                .output()
                .map(|out| {
                    format!(
                        "{}{}",
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    )
                })
                .unwrap_or_else(|e| format!("scripts/setup-browser did not run: {e}")),
        );
    }
    let still = missing(root);
    if still.is_empty() {
        return true;
    }
    let why = format!(
        "the dashboard browser test needs {} (scripts/setup-browser installs them){}",
        still.join(", "),
        setup.map(|s| format!(":\n{s}")).unwrap_or_default()
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why}");
    }
    eprintln!("SKIPPED: {why}");
    false
}

fn works(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success())
}
