//! `patchbay check` and `patchbay run` on broken projects: every problem,
//! each with its file and line, and nothing started.

use std::path::PathBuf;
use std::process::Command;

use crate::support::binary;

fn fixture(name: &str) -> PathBuf {
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
            "unknown kind `webhok` — did you mean `webhook`?",
        ),
        (
            at("patchbay.yaml", 9),
            "connector `chat`: rate_limit.requests must be at least 1",
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
