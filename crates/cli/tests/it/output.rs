//! How commands write: a reader that leaves early ends a command quietly
//! with exit code 0; colours only on a terminal and never with `NO_COLOR`;
//! `patchbay run` says where its dashboard, API and metrics are.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::support::{TestProject, binary, patchbay_run};

const FLOW: &str = "trigger: { manual: {} }\nsteps:\n  - transform: '{ok: true}'\n";

#[test]
fn a_closed_pipe_ends_a_command_quietly_with_exit_code_0() {
    let project = TestProject::new("", &[("hello", FLOW)]);
    let dir = project.path().to_str().unwrap();
    for args in [
        vec!["schema"],
        vec!["runs", "list", "-p", dir, "--limit", "500"],
        vec!["check", dir],
    ] {
        let mut child = Command::new(binary())
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before the command writes a byte.
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// `command` run with a terminal for its output (through `script`), and
/// what it wrote there.
fn on_a_terminal(command: &str, no_color: bool) -> String {
    let mut script = Command::new("script");
    script
        .args(["-qec", command, "/dev/null"])
        .env("PATCHBAY_LOG", "info");
    if no_color {
        script.env("NO_COLOR", "1");
    } else {
        script.env_remove("NO_COLOR");
    }
    let output = script
        .output()
        .expect("`script` (util-linux) runs the command on a terminal");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn logs_are_coloured_on_a_terminal_unless_no_color_is_set() {
    let project = TestProject::new("", &[("hello", FLOW)]);
    let command = format!(
        "{} invoke hello --project {}",
        binary(),
        project.path().display()
    );
    let coloured = on_a_terminal(&command, false);
    assert!(coloured.contains("engine started"), "{coloured}");
    assert!(
        coloured.contains("\u{1b}["),
        "no colour on a terminal: {coloured}"
    );
    let plain = on_a_terminal(&command, true);
    assert!(plain.contains("engine started"), "{plain}");
    assert!(
        !plain.contains("\u{1b}["),
        "colour despite NO_COLOR: {plain}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_prints_where_its_dashboard_api_and_metrics_are() {
    let project = TestProject::new("", &[("hello", FLOW)]);
    let mut child = patchbay_run(project.path(), &[])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut shown = Vec::new();
    for _ in 0..4 {
        shown.push(lines.next().unwrap().unwrap());
    }
    // The reader leaves; the node goes on serving.
    drop(lines);
    let base = shown[0]
        .strip_prefix("patchbay listening on ")
        .unwrap_or_else(|| panic!("{shown:?}"))
        .to_string();
    for (line, (label, path)) in shown[1..].iter().zip([
        ("dashboard", "/ui"),
        ("API", "/api/v1"),
        ("metrics", "/metrics"),
    ]) {
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words[0], label, "{shown:?}");
        assert_eq!(words[1], format!("{base}{path}"), "{shown:?}");
    }
    let client = reqwest::Client::new();
    for path in ["/ui", "/metrics", "/api/docs"] {
        let status = client
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success(), "{path}: {status}");
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn long_commands_draw_a_progress_bar_on_a_terminal_and_nothing_on_a_pipe() {
    let tutorial = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/tutorial");
    let tutorial = tutorial.to_str().unwrap();
    let command = format!("{} test {tutorial}", binary());
    // `script` merges standard error into what it captures.
    let drawn = on_a_terminal(&command, true);
    assert!(drawn.contains("flow tests ["), "no progress bar: {drawn}");
    let piped = Command::new(binary())
        .args(["test", tutorial])
        .output()
        .unwrap();
    assert!(piped.status.success(), "{piped:?}");
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert!(
        !stderr.contains("flow tests ["),
        "a bar on a pipe: {stderr}"
    );
    assert!(!stderr.contains('\r'), "a bar on a pipe: {stderr:?}");
}
