//! `patchbay test`: the example projects' flow tests pass; a broken flow
//! fails with a readable difference; stale fixtures are caught by the
//! contract; JUnit XML is written; `--record` writes fixtures from real
//! upstreams without a credential in them.

use std::path::{Path, PathBuf};
use std::process::Command;

use patchbay_testkit::{MockUpstream, Reply};
use serde_json::json;

use crate::check::fixture;
use crate::support::binary;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `patchbay test ARGS` in `dir`: exit code, stdout, stderr.
fn patchbay_test(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let output = Command::new(binary())
        .current_dir(dir)
        .arg("test")
        .args(args)
        .envs(env.iter().copied())
        .env_remove("RUST_LOG")
        .output()
        .expect("patchbay runs");
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// Durations vary from run to run.
fn without_durations(report: &str) -> String {
    report
        .lines()
        .map(|line| match line.rfind(" s") {
            Some(end) if line.ends_with(" s") || line.ends_with(" s)") => {
                let start = line[..end].rfind([' ', '(']).map_or(0, |i| i + 1);
                format!("{}N.NN{}", &line[..start], &line[end..])
            }
            _ => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_demo_projects_tests_pass() {
    let (code, stdout, stderr) = patchbay_test(&workspace(), &["examples/demo"], &[]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("10 passed, 0 failed, 10 in total"),
        "{stdout}"
    );
    for name in [
        "new-order",
        "new-order-backup-gateway",
        "new-order-chat-down",
        "quote",
        "sync-contacts",
        "sync-contacts-nothing-new",
        "follow-up-shipped",
        "follow-up-chat-refuses",
        "alerts-breaker-open",
        "alerts-run-dead",
    ] {
        assert!(
            stdout.contains(&format!("ok    {name} (tests/{name}.yaml)")),
            "{name}: {stdout}"
        );
    }
}

#[test]
fn the_tutorials_tests_pass_with_its_ten_second_wait_skipped() {
    let (code, stdout, stderr) = patchbay_test(&workspace(), &["examples/tutorial"], &[]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("4 passed, 0 failed, 4 in total"),
        "{stdout}"
    );
}

#[test]
fn a_broken_flow_fails_with_a_readable_difference_and_junit_says_so() {
    let project = tempfile::tempdir().unwrap();
    copy_dir(&workspace().join("examples/demo"), project.path());
    // The announcement reads the backup gateway's charge, not the one made.
    let flow = project.path().join("flows/new-order.yaml");
    let text = std::fs::read_to_string(&flow).unwrap();
    let broken = text.replace(
        r"\($steps.charge.body.id)",
        r"\($steps.charge.body.reference)",
    );
    assert_ne!(text, broken);
    std::fs::write(&flow, broken).unwrap();
    let junit = project.path().join("junit.xml");

    let (code, stdout, stderr) = patchbay_test(
        project.path(),
        &[
            ".",
            "--only",
            "tests/new-order.yaml",
            "--only",
            "tests/quote.yaml",
            "--junit",
            junit.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    insta::assert_snapshot!(without_durations(&stdout));

    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains(r#"tests="2" failures="1" errors="0""#),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<testcase name="new-order" classname="tests/new-order.yaml""#),
        "{xml}"
    );
    assert!(xml.contains("expect.requests.chat"), "{xml}");
}

#[test]
fn fixtures_are_checked_against_the_connectors_contract() {
    let dir = fixture("contracts-valid");
    let (code, stdout, stderr) = patchbay_test(&dir, &[], &[]);
    assert_eq!(
        code,
        Some(0),
        "the fitting fixture passes: {stdout}\n{stderr}"
    );

    let (code, stdout, stderr) = patchbay_test(&dir, &[".", "--only", "stale-tests"], &[]);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    insta::assert_snapshot!(without_durations(&stdout));
}

#[test]
fn a_test_file_with_a_typo_names_the_file_and_the_key() {
    let project = tempfile::tempdir().unwrap();
    copy_dir(&workspace().join("examples/tutorial"), project.path());
    std::fs::write(
        project.path().join("tests/typo.yaml"),
        "flow: new-order\nexpect:\n  stauts: succeeded\n",
    )
    .unwrap();
    std::fs::write(
        project.path().join("tests/no-such-flow.yaml"),
        "flow: new-ordr\n",
    )
    .unwrap();
    let (code, stdout, _) = patchbay_test(project.path(), &["."], &[]);
    assert_eq!(code, Some(1));
    assert!(
        stdout.contains("ERROR typo (tests/typo.yaml)") && stdout.contains("stauts"),
        "{stdout}"
    );
    assert!(
        stdout.contains("the project has no flow `new-ordr` (did you mean `new-order`?)"),
        "{stdout}"
    );
}

#[tokio::test]
async fn record_writes_fixtures_that_pass_and_hold_no_secret() {
    const TOKEN: &str = "live-token-7f3a9c21";
    const PASSWORD: &str = "hunter2-db-password";
    let upstream = MockUpstream::start().await;
    // A real-looking API: it checks the token, and its answer carries the
    // caller's credentials back (as some token and account endpoints do).
    upstream.route_fn("GET", "/v1/accounts/{id}", |request| {
        if request.header("authorization") != Some(&format!("Bearer {TOKEN}")) {
            return Reply::json(401, json!({"error": "unauthorized"}));
        }
        Reply::json(
            200,
            json!({
                "id": request.param("id"),
                "plan": "pro",
                "access_token": "at-another-credential",
                "echo": format!("called with Bearer {TOKEN}"),
                "owner": {"name": "Ada", "iban": "FR7630006000011234567890189"},
            }),
        )
        .with_header("set-cookie", "session=abc")
    });
    upstream.route_fn("POST", "/v1/notes", |request| {
        Reply::json(
            201,
            json!({"id": "n1", "signed_by": request.header("x-db-password")}),
        )
    });

    let project = tempfile::tempdir().unwrap();
    std::fs::write(
        project.path().join("patchbay.yaml"),
        r#"connectors:
  accounts:
    url: "${env:ACCOUNTS_URL}/v1"
    dangerous_allow_private: true
    auth: { bearer: { token: "${env:ACCOUNTS_TOKEN}" } }
    headers: { X-Db-Password: "${env:NOTE_PASSWORD}" }
"#,
    )
    .unwrap();
    std::fs::create_dir_all(project.path().join("flows")).unwrap();
    std::fs::write(
        project.path().join("flows/lookup.yaml"),
        r#"trigger: { manual: {} }
steps:
  - id: account
    call: accounts GET /accounts/{.id}
  - id: note
    call: accounts POST /notes
    body: '{text: "plan \($steps.account.body.plan)"}'
"#,
    )
    .unwrap();
    std::fs::create_dir_all(project.path().join("tests")).unwrap();
    std::fs::write(
        project.path().join("tests/lookup.yaml"),
        "flow: lookup\ninput: { id: acc_1 }\nrecord: { redact: [iban] }\n",
    )
    .unwrap();

    let url = upstream.url();
    let dir = project.path().to_path_buf();
    let (code, stdout, stderr) = tokio::task::spawn_blocking(move || {
        let env = [
            ("ACCOUNTS_URL", url.as_str()),
            ("ACCOUNTS_TOKEN", TOKEN),
            ("NOTE_PASSWORD", PASSWORD),
        ];
        patchbay_test(&dir, &[".", "--record", "--redact", "name"], &env)
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert_eq!(upstream.requests().len(), 2, "the real upstream was called");

    let recorded =
        std::fs::read_to_string(project.path().join("tests/lookup.recorded.yaml")).unwrap();
    for secret in [
        TOKEN,
        "at-another-credential",
        "FR7630006000011234567890189",
        PASSWORD,
        "session=abc",
    ] {
        assert!(!recorded.contains(secret), "{secret} leaked:\n{recorded}");
    }
    assert!(recorded.contains("echo: called with ****"), "{recorded}");
    assert!(recorded.contains("/v1/accounts/acc_1"), "{recorded}");

    // The recording is a test of its own, and it passes with no upstream.
    drop(upstream);
    let dir = project.path().to_path_buf();
    let (code, stdout, stderr) = tokio::task::spawn_blocking(move || {
        patchbay_test(&dir, &[".", "--only", "tests/lookup.recorded.yaml"], &[])
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{recorded}\n{stdout}\n{stderr}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
