//! `patchbay check` and `patchbay run` on broken projects: every problem,
//! each with its file and line, and nothing started. `check` prepares a
//! project exactly as `run` does (connectors built, webhook secrets
//! resolved), so its reports are snapshots of what `run` would refuse.

use std::path::PathBuf;
use std::process::Command;

use crate::support::{TestProject, binary};

pub(crate) fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn check_reports_every_problem_with_file_and_line() {
    let dir = fixture("broken");
    let output = Command::new(binary())
        .arg("check")
        .arg(&dir)
        .env_remove("PATCHBAY_TEST_UNSET_CRM_URL")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    let at = |file: &str, line: u32| format!("{}:{line}:", dir.join(file).display());
    let expected = [
        (
            at("patchbay.yaml", 7),
            "connector `crm` url: environment variable `PATCHBAY_TEST_UNSET_CRM_URL` is not set",
        ),
        (
            at("flows/fanout.yaml", 4),
            "unknown key `concurency` — did you mean `concurrency`?",
        ),
        (
            at("flows/sync.yaml", 6),
            "flow `sync` step 2: unknown connector `erpp` — did you mean `erp`?",
        ),
        (
            at("flows/sync.yaml", 7),
            "flow `sync` step 2: invalid jq in `body`",
        ),
        (
            at("flows/orders.yaml", 3),
            "flow `orders` step 1: a step has exactly one kind, found `transform`, `filter`",
        ),
        (
            at("flows/orders.yaml", 7),
            "flow `orders` step 2: invalid jq in `transform`",
        ),
        (
            at("flows/nightly.yaml", 1),
            "flow `nightly`: invalid cron expression `0 25 * * *`",
        ),
        (
            at("flows/typo.yaml", 2),
            "`webhok` is not a trigger kind — did you mean `webhook`?",
        ),
        (
            at("patchbay.yaml", 9),
            "connector `chat`: rate_limit.requests must be at least 1",
        ),
        (
            at("patchbay.yaml", 9),
            "connector `chat`: max_in_flight must be at least 1",
        ),
        (
            at("flows/fallback.yaml", 7),
            "flow `fallback` step 1 fallback 1: a fallback step cannot use `for_each`",
        ),
    ];
    for (location, message) in &expected {
        assert!(
            stderr
                .lines()
                .any(|line| line.starts_with(location.as_str()) && line.contains(message)),
            "missing `{location} … {message}` in:\n{stderr}"
        );
    }
    assert!(
        stderr.contains("$nope"),
        "the undefined jq variable is named:\n{stderr}"
    );
    assert!(
        stderr.contains(&format!("{} problems found", expected.len())),
        "{stderr}"
    );
}

#[test]
fn run_refuses_a_broken_project_with_the_same_report() {
    let dir = fixture("broken");
    let check = Command::new(binary())
        .arg("check")
        .arg(&dir)
        .output()
        .unwrap();
    let run = Command::new(binary())
        .args(["run", "--listen", "127.0.0.1:0"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    let check_report = String::from_utf8(check.stderr).unwrap();
    let run_report = String::from_utf8(run.stderr).unwrap();
    assert!(
        run_report.starts_with(check_report.trim_end()),
        "check:\n{check_report}\nrun:\n{run_report}"
    );
    assert!(
        !dir.join(".patchbay").exists(),
        "a refused project must not create a store"
    );
}

#[test]
fn check_accepts_a_valid_project_and_usage_errors_exit_2() {
    let ok = Command::new(binary())
        .arg("check")
        .arg(fixture("good"))
        .output()
        .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("ok: 1 flow(s)"));

    let usage = Command::new(binary()).arg("frobnicate").output().unwrap();
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn schema_is_json_schema_of_the_configuration() {
    let output = Command::new(binary()).arg("schema").output().unwrap();
    assert!(output.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(schema["properties"]["connectors"].is_object(), "{schema}");
    let flow = Command::new(binary())
        .args(["schema", "--flow"])
        .output()
        .unwrap();
    let flow: serde_json::Value = serde_json::from_slice(&flow.stdout).unwrap();
    assert!(flow["properties"]["steps"].is_object(), "{flow}");
}

/// `patchbay check DIR` with `env` added to its environment, as a snapshot
/// records it: exit code, standard output and standard error, the project
/// folder written `[project]`.
pub(crate) fn check_report(dir: &std::path::Path, env: &[(&str, &str)]) -> String {
    let mut command = Command::new(binary());
    command.arg("check").arg(dir).env_remove("RUST_LOG");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().unwrap();
    let text = format!(
        "exit code: {:?}\n--- stdout\n{}--- stderr\n{}\n",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    text.replace(&dir.display().to_string(), "[project]")
}

/// Connectors that load but cannot be built: only `run` refused them once.
const UNBUILDABLE: &str = "\
connectors:
  bad_header:
    url: https://api.example.com
    headers: { \"X Trace\": \"1\" }
  two_line_header:
    url: https://api.example.com
    headers: { X-Token: \"${env:PATCHBAY_TEST_TWO_LINES}\" }
  two_line_token:
    url: https://api.example.com
    auth: { bearer: { token: \"${env:PATCHBAY_TEST_TWO_LINES}\" } }
  bad_port:
    url: https://api.example.com:99999
  query_in_url:
    url: https://api.example.com/v1?key=1
  bad_ca:
    url: https://api.example.com
    tls: { ca: not-a-certificate.pem }
";

#[test]
fn check_builds_the_connectors_as_run_does() {
    let project = TestProject::new(UNBUILDABLE, &[]);
    std::fs::write(
        project.path().join("not-a-certificate.pem"),
        "just some text\n",
    )
    .unwrap();
    let env = [("PATCHBAY_TEST_TWO_LINES", "first\nsecond")];
    let report = check_report(project.path(), &env);
    assert!(report.starts_with("exit code: Some(1)"), "{report}");
    assert!(!report.contains("second"), "a credential leaked:\n{report}");
    insta::assert_snapshot!(report);

    // `run` refuses exactly what `check` reports, and starts nothing.
    let mut run = Command::new(binary());
    run.args(["run", "--listen", "127.0.0.1:0"])
        .arg(project.path())
        .env_remove("RUST_LOG");
    for (key, value) in env {
        run.env(key, value);
    }
    let run = run.output().unwrap();
    assert_eq!(run.status.code(), Some(1));
    let run_report = String::from_utf8_lossy(&run.stderr)
        .replace(&project.path().display().to_string(), "[project]");
    let check_report = report.split("--- stderr\n").nth(1).unwrap().trim_end();
    assert!(
        run_report.starts_with(check_report),
        "check:\n{check_report}\nrun:\n{run_report}"
    );
    assert!(!project.path().join(".patchbay").exists());
}

#[test]
fn check_reports_every_broken_part_of_patchbay_yaml() {
    let project = TestProject::new(
        "\
# Two broken connectors out of three, and a misspelt setting.
connectors:
  crm:
    url: https://crm.example.com
    timeuot: 5s
  erp:
    url: https://erp.example.com
  chat:
    url: https://chat.example.com
    timeout: [5s]
server:
  lisen: 127.0.0.1:8080
engine:
  workers: 2
",
        &[(
            "sync",
            "trigger: { manual: {} }\nsteps:\n  - call: erp GET /orders\n  - transform: '.a |'\n",
        )],
    );
    insta::assert_snapshot!(check_report(project.path(), &[]));
}

#[test]
fn check_resolves_webhook_secrets_with_the_plan() {
    let project = TestProject::new(
        "",
        &[(
            "hook",
            "\
trigger:
  webhook:
    path: /hooks/a
    verify: { standard_webhooks: { secret: [\"${env:PATCHBAY_TEST_HOOK_SECRET}\", \"${env:PATCHBAY_TEST_UNSET}\"] } }
steps:
  - transform: '.a |'
",
        )],
    );
    let report = check_report(
        project.path(),
        &[("PATCHBAY_TEST_HOOK_SECRET", "whsec_@@not-base64@@")],
    );
    assert!(
        !report.contains("@@not-base64@@"),
        "a secret leaked:\n{report}"
    );
    insta::assert_snapshot!(report);
}
