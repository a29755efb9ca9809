//! Crash recovery with the real binary: SIGKILL while runs are mid-flow, then
//! restart. Every acknowledged run completes; no completed step is repeated.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use patchbay_testkit::{MockUpstream, Reply};
use serde_json::{Value, json};

use crate::support::{TestProject, binary, eventually, get_json, post_json};

/// A `patchbay run` child process and the address it listens on.
struct Running {
    child: Child,
    base: String,
}

fn start(project: &TestProject, env: &[(&str, String)]) -> Running {
    let mut command = Command::new(binary());
    command
        .args(["run", "--listen", "127.0.0.1:0"])
        .arg(project.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("start patchbay");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read address");
    let base = line
        .trim()
        .strip_prefix("patchbay listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_string();
    Running { child, base }
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    child.wait().unwrap()
}

async fn run_status(client: &reqwest::Client, base: &str, id: &str) -> Option<String> {
    let response = client
        .get(format!("{base}/api/v1/runs/{id}"))
        .send()
        .await
        .ok()?;
    let body: Value = response.json().await.ok()?;
    body["run"]["status"].as_str().map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_flow_every_acknowledged_run_completes_without_repeating_steps() {
    const RUNS: usize = 20;
    let first = MockUpstream::start().await;
    first.route_fn("POST", "/a/{n}", |req| {
        Reply::json(200, json!({ "n": req.param("n") }))
    });
    let second = MockUpstream::start().await;
    second.route("POST", "/b/{n}", Reply::json(200, json!({ "ok": true })));
    second.hold();

    let project = TestProject::new(
        "\
connectors:
  a: { url: \"${env:A_URL}\", dangerous_allow_private: true }
  b: { url: \"${env:B_URL}\", dangerous_allow_private: true }
engine: { lease: 1s, poll_interval: 100ms }
",
        &[(
            "two-steps",
            "\
trigger: { webhook: { path: /hooks/x } }
steps:
  - id: one
    call: a POST /a/{.n}
    body: '.'
  - id: two
    call: b POST /b/{.n}
    body: '{from_one: $steps.one.body.n}'
",
        )],
    );
    let env = [("A_URL", first.url()), ("B_URL", second.url())];
    let mut node = start(&project, &env);
    let client = reqwest::Client::new();
    let mut run_ids = Vec::new();
    for n in 0..RUNS {
        let response = post_json(&format!("{}/hooks/x", node.base), &json!({ "n": n })).await;
        assert_eq!(response.status(), 202);
        let body: Value = response.json().await.unwrap();
        run_ids.push(body["run_id"].as_str().unwrap().to_string());
    }
    // Every run has finished step one and is waiting inside step two.
    assert!(
        second
            .wait_for_requests(RUNS, Duration::from_secs(20))
            .await,
        "step two never started"
    );
    assert_eq!(first.request_count(), RUNS);

    node.child.kill().unwrap(); // SIGKILL
    node.child.wait().unwrap();
    second.release();

    let mut node = start(&project, &env);
    for id in &run_ids {
        let done = eventually(Duration::from_secs(30), || {
            let client = client.clone();
            let base = node.base.clone();
            let id = id.clone();
            async move { run_status(&client, &base, &id).await.as_deref() == Some("succeeded") }
        })
        .await;
        assert!(done, "run {id} did not complete after the restart");
    }

    assert_eq!(
        first.request_count(),
        RUNS,
        "a completed step was executed again"
    );
    let mut seen: Vec<u64> = second
        .requests()
        .iter()
        .skip(RUNS)
        .map(|r| {
            r.json.as_ref().unwrap()["from_one"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(
        seen,
        (0..RUNS as u64).collect::<Vec<_>>(),
        "step two resumed with step one's journalled output"
    );

    let status = terminate(&mut node.child);
    assert_eq!(status.code(), Some(0), "SIGTERM is a clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_running_step_finish_and_exits_zero() {
    let slow = MockUpstream::start().await;
    slow.route(
        "POST",
        "/slow",
        Reply::json(200, json!({ "ok": true })).with_delay(Duration::from_millis(700)),
    );
    let project = TestProject::new(
        "connectors:\n  s: { url: \"${env:S_URL}\", dangerous_allow_private: true }\nengine: { shutdown_grace: 5s }\n",
        &[(
            "slow",
            "trigger: { webhook: { path: /hooks/slow } }\nsteps:\n  - call: s POST /slow\n  - transform: '\"next\"'\n",
        )],
    );
    let env = [("S_URL", slow.url())];
    let mut node = start(&project, &env);
    let client = reqwest::Client::new();
    let response = post_json(&format!("{}/hooks/slow", node.base), &json!({})).await;
    assert_eq!(response.status(), 202);
    assert!(slow.wait_for_requests(1, Duration::from_secs(10)).await);
    let status = terminate(&mut node.child);
    assert_eq!(status.code(), Some(0));

    // The step in flight finished and was journalled; the run was handed back
    // to the queue and completes on the next start without calling again.
    let mut node = start(&project, &env);
    let body: Value = get_json(&format!("{}/api/v1/runs", node.base)).await;
    let id = body["items"][0]["id"].as_str().unwrap().to_string();
    let done = eventually(Duration::from_secs(20), || {
        let client = client.clone();
        let base = node.base.clone();
        let id = id.clone();
        async move { run_status(&client, &base, &id).await.as_deref() == Some("succeeded") }
    })
    .await;
    assert!(done);
    assert_eq!(
        slow.request_count(),
        1,
        "the finished step was not repeated"
    );
    terminate(&mut node.child);
}

/// A supervisor may stop a node the moment it says where it listens: the
/// signal is a clean stop then too (exit 0), never the signal's default
/// action killing a node that had not yet listened for it.
#[tokio::test]
async fn sigterm_right_after_the_address_is_printed_is_a_clean_stop() {
    let project = TestProject::new(
        "",
        &[(
            "hello",
            "trigger: { webhook: { path: /hooks/hello } }\nsteps:\n  - transform: '.'\n",
        )],
    );
    let log = project.path().join("patchbay.log");
    for attempt in 0..10 {
        let node = crate::support::Patchbay::spawn(
            crate::support::patchbay_run(project.path(), &[]),
            &log,
        );
        let status = node.terminate();
        assert!(
            status.success(),
            "attempt {attempt}: {status} on a SIGTERM right after start"
        );
    }
}

#[tokio::test]
async fn sighup_reloads_the_configuration_and_an_invalid_one_is_refused() {
    let flow = "trigger: { manual: {} }\nsteps:\n  - transform: .\n";
    let project = TestProject::new("", &[("first", flow)]);
    let log = project.path().join("node.log");
    let node =
        crate::support::Patchbay::spawn(crate::support::patchbay_run(project.path(), &[]), &log);
    let hangup = || {
        let status = Command::new("kill")
            .args(["-HUP", &node.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };
    let flows = |base: String| async move {
        let listed = get_json(&format!("{base}/api/v1/flows")).await;
        let mut names: Vec<String> = listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|flow| flow["name"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    };
    std::fs::write(project.path().join("flows/second.yaml"), flow).unwrap();
    hangup();
    assert!(
        eventually(Duration::from_secs(10), || async {
            flows(node.base.clone()).await == ["first", "second"]
        })
        .await,
        "not reloaded: {:?}",
        flows(node.base.clone()).await
    );

    // An invalid project changes nothing, and the log says why.
    std::fs::write(project.path().join("flows/third.yaml"), "trigger: {}\n").unwrap();
    hangup();
    assert!(
        eventually(Duration::from_secs(10), || async {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("SIGHUP: reload refused")
        })
        .await,
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert_eq!(flows(node.base.clone()).await, ["first", "second"]);
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("third.yaml")
    );
    node.stop_cleanly();
}
