//! The dashboard in a real browser: the `patchbay` binary serves a project
//! whose flow calls two mock upstreams, and `ui-tests/dashboard.test.mjs`
//! (node's test runner driving a browser through WebDriver with
//! selenium-webdriver) follows a run, makes an upstream fail, finds the dead
//! letter, fixes the upstream, replays it from the dashboard (and another
//! run with an edited input), follows a run's path on its flow's picture,
//! draws every flow of the demo project (served by a second node) and
//! reads the overview charts. On every page it takes a screenshot, runs axe-core
//! (failing on a serious or critical finding) and checks that nothing
//! makes the page scroll sideways.
//!
//! It runs four times, each against a node of its own: in Debian's chromium
//! (through chromium-driver) and firefox-esr (through geckodriver, built
//! from crates.io), each at a desktop's 1400×900 and a phone's 390×844.
//!
//! `scripts/setup-browser` installs what is missing: the browsers and
//! drivers, geckodriver and the node packages. When something is still
//! missing the test fails under `CI=true` and is skipped, saying why,
//! elsewhere. Screenshots go to `target/ui-screenshots/` (or
//! `$PATCHBAY_UI_SCREENSHOTS`), named `BROWSER-WxH-NN-page.png`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use patchbay_testkit::{MockUpstream, Reply};
use serde_json::json;

use crate::support::{ORDER_FLOW, Patchbay, SHOP_CONNECTORS, TestProject, patchbay_run};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const FIREFOX: &str = "/usr/bin/firefox-esr";
const BROWSERS: [&str; 2] = ["chromium", "firefox"];
const VIEWPORTS: [&str; 2] = ["1400x900", "390x844"];

/// The shop's connectors, chat with a pinned version, a contract its
/// replies do not quite fit and a breaker per endpoint; the dashboard
/// signs in with an `operate` token: enough to replay.
fn root_config() -> String {
    let connectors = SHOP_CONNECTORS.replace(
        "  chat:\n",
        "  chat:\n    api_version: { value: '2024-06-20', header: Chat-Version }\n    spec: chat.yaml\n    \
         circuit_breaker: { key: '\"\\(.method) \\(.path)\"' }\n",
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

/// A flow with a step after its call: when the call fails for good, the
/// run page marks that step as never reached.
const RELAY_FLOW: &str = "\
trigger: { webhook: { path: /hooks/relay } }
steps:
  - id: post
    call: chat POST /messages
    body: '{text: \"relay \\(.amount)\"}'
  - id: after
    transform: '{relayed: .amount}'
";

/// The demo project (`examples/demo`) served by a node of its own, in a
/// copy so its store stays out of the checkout, with its connectors
/// pointed at `upstream`: the browser draws every one of its flows.
fn demo_node(root: &Path, upstream: &str) -> (tempfile::TempDir, Patchbay) {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    copy(&root.join("examples/demo"), dir.path());
    let env: Vec<(&str, String)> = [
        "DEMO_PAYMENTS_URL",
        "DEMO_PAYMENTS_BACKUP_URL",
        "DEMO_CRM_URL",
        "DEMO_ERP_URL",
        "DEMO_CHAT_URL",
    ]
    .into_iter()
    .map(|name| (name, upstream.to_string()))
    .chain(
        [
            "DEMO_PAYMENTS_KEY",
            "DEMO_PAYMENTS_BACKUP_KEY",
            "DEMO_CRM_KEY",
            "DEMO_ERP_USER",
            "DEMO_ERP_PASSWORD",
        ]
        .into_iter()
        .map(|name| (name, "not-a-real-key".to_string())),
    )
    .collect();
    let log = dir.path().join("patchbay.log");
    let node = Patchbay::spawn(patchbay_run(dir.path(), &env), &log);
    (dir, node)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_follows_runs_dead_letters_and_replay_in_a_browser() {
    let root = workspace_root();
    let Some(geckodriver) = browser_ready(&root) else {
        return;
    };
    let screenshots = std::env::var_os("PATCHBAY_UI_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target").join("ui-screenshots"));
    // Every pairing runs, so one failure does not hide how the others did.
    let mut failures = Vec::new();
    for browser in BROWSERS {
        for viewport in VIEWPORTS {
            let started = Instant::now();
            match run_in(&root, &geckodriver, &screenshots, browser, viewport).await {
                Ok(report) => println!(
                    "{browser} at {viewport}: passed in {:.0?}\n{report}",
                    started.elapsed()
                ),
                Err(report) => failures.push(format!("--- {browser} at {viewport}:\n{report}")),
            }
        }
    }
    println!("screenshots in {}", screenshots.display());
    assert!(
        failures.is_empty(),
        "the browser test failed {} of {} times:\n{}",
        failures.len(),
        BROWSERS.len() * VIEWPORTS.len(),
        failures.join("\n")
    );
}

/// One run of `dashboard.test.mjs` in `browser` at `viewport`, against a
/// node and upstreams of its own: its report, as an error when it failed.
async fn run_in(
    root: &Path,
    geckodriver: &Path,
    screenshots: &Path,
    browser: &str,
    viewport: &str,
) -> Result<String, String> {
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
        &[
            ("order", ORDER_FLOW),
            ("remind", REMIND_FLOW),
            ("relay", RELAY_FLOW),
        ],
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
    let (_demo_dir, demo) = demo_node(root, &payments.url());

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
        .env("PATCHBAY_RELAY", format!("{}/hooks/relay", node.base))
        .env("PATCHBAY_DEMO_URL", &demo.base)
        .env("PATCHBAY_MOCK_CONTROL", format!("{}/control", chat.url()))
        .env("PATCHBAY_SCREENSHOTS", screenshots)
        .env("BROWSER", browser)
        .env("VIEWPORT", viewport)
        .env("CHROMIUM", CHROMIUM)
        .env("CHROMEDRIVER", CHROMEDRIVER)
        .env("FIREFOX", FIREFOX)
        .env("GECKODRIVER", geckodriver);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("the node task ends")
        .expect("node runs");
    let status = node.terminate();
    demo.terminate();

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() || !status.success() {
        return Err(format!(
            "node: {}, patchbay: {status}\n{stdout}\n{stderr}\n--- patchbay log:\n{}",
            output.status,
            std::fs::read_to_string(&log).unwrap_or_default()
        ));
    }
    Ok(stdout.into_owned())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the cli crate sits two levels below the workspace")
        .to_path_buf()
}

/// Where `scripts/setup-browser` builds geckodriver.
fn geckodriver() -> PathBuf {
    std::env::var_os("PATCHBAY_TOOLS")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache/patchbay/tools"))
        })
        .unwrap_or_default()
        .join("bin/geckodriver")
}

/// geckodriver's path once the browsers, their drivers, node and the
/// ui-tests packages are there, after `scripts/setup-browser` installed what
/// was missing. When they are not: a failure under `CI=true`, a skip with
/// the reason elsewhere.
fn browser_ready(root: &Path) -> Option<PathBuf> {
    let geckodriver = geckodriver();
    let missing = |root: &Path| {
        let mut missing: Vec<String> = [
            Path::new(CHROMIUM),
            Path::new(CHROMEDRIVER),
            Path::new(FIREFOX),
            &geckodriver,
        ]
        .into_iter()
        .filter(|path| !path.exists())
        .map(|path| path.display().to_string())
        .collect();
        if !works("node") {
            missing.push("node".to_string());
        }
        let modules = root.join("ui-tests/node_modules");
        if !modules.join("selenium-webdriver").exists() || !modules.join("axe-core").exists() {
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
        return Some(geckodriver);
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
    None
}

fn works(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success())
}
