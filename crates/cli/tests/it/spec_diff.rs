//! `patchbay spec diff OLD NEW --project DIR`: the changes between two
//! versions of a spec, each mapped to exactly the steps of the project
//! that use what changed.

use std::process::Command;

use serde_json::Value;

use crate::check::fixture;
use crate::support::binary;

fn spec_diff(args: &[&str]) -> (Option<i32>, String, String) {
    let dir = fixture("spec-diff");
    let output = Command::new(binary())
        .current_dir(&dir)
        .args(["spec", "diff", "specs/crm.yaml", "specs/crm-next.yaml"])
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn each_change_names_exactly_the_steps_that_use_it() {
    let (code, stdout, stderr) = spec_diff(&["--project", ".", "--format", "json"]);
    assert_eq!(
        code,
        Some(1),
        "a breaking change touches the project: {stderr}"
    );
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let touching: Vec<(String, String, Vec<String>)> = report["touching"]
        .as_array()
        .unwrap()
        .iter()
        .map(|change| {
            let uses = change["uses"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| {
                    format!(
                        "{} {} {}:{}",
                        u["flow"].as_str().unwrap(),
                        u["step"].as_str().unwrap(),
                        u["file"].as_str().unwrap(),
                        u["line"]
                    )
                })
                .collect();
            (
                change["rule"].as_str().unwrap().to_string(),
                change["operation"].as_str().unwrap().to_string(),
                uses,
            )
        })
        .collect();
    assert_eq!(
        touching,
        [
            (
                "request-parameter-added-required".to_string(),
                "POST /contacts".to_string(),
                vec!["sync step 3 ./flows/sync.yaml:8".to_string()]
            ),
            (
                "response-property-removed".to_string(),
                "GET /contacts".to_string(),
                vec!["sync step 2 ./flows/sync.yaml:6".to_string()]
            ),
            (
                "request-property-removed".to_string(),
                "POST /contacts".to_string(),
                vec!["sync step 3 ./flows/sync.yaml:8".to_string()]
            ),
        ]
    );
    // `lookup` reads `name` and `company.name`, which did not change; the
    // rest of the changes touch nothing the project uses.
    let untouched = report["untouched"].as_array().unwrap();
    assert_eq!(untouched.len(), 9, "{stdout}");
    assert!(!stdout.contains("lookup"), "{stdout}");
}

#[test]
fn the_text_report_reads_as_a_review_comment() {
    let (code, stdout, _) = spec_diff(&["--project", "."]);
    assert_eq!(code, Some(1));
    insta::assert_snapshot!(stdout);
}

#[test]
fn without_a_project_any_breaking_change_fails_and_no_change_passes() {
    let (code, stdout, _) = spec_diff(&["--format", "markdown"]);
    assert_eq!(code, Some(1));
    assert!(stdout.starts_with("### API changes"), "{stdout}");
    assert!(
        stdout.contains("| breaking | `operation-removed` | `GET /contacts/me` |"),
        "{stdout}"
    );

    let dir = fixture("spec-diff");
    let same = Command::new(binary())
        .current_dir(&dir)
        .args(["spec", "diff", "specs/crm.yaml", "specs/crm.yaml"])
        .output()
        .unwrap();
    assert_eq!(same.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&same.stdout), "no changes\n");
}

#[test]
fn a_project_that_does_not_use_the_old_spec_is_an_error() {
    let (code, stdout, stderr) = spec_diff(&["--project", "../contracts-valid"]);
    assert_eq!(code, Some(1));
    assert!(stdout.is_empty(), "no verdict is printed: {stdout}");
    assert!(
        stderr.contains(
            "error: no connector of the project in ../contracts-valid has `spec: specs/crm.yaml`"
        ),
        "{stderr}"
    );
}

/// The worked example of docs/change-safety.md: the demo project's CRM
/// announces a version that moves names into an object, makes `email`
/// optional and nullable and wants a `workspace`; every change lands on
/// the sync flow's steps, and no credential is needed to say so.
#[test]
fn the_demo_projects_next_crm_version_breaks_exactly_its_sync_flow() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = Command::new(binary())
        .current_dir(&root)
        .args([
            "spec",
            "diff",
            "examples/demo/specs/crm.yaml",
            "examples/demo/specs/crm-2026-07.yaml",
            "--project",
            "examples/demo",
            "--format",
            "json",
        ])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut found: Vec<(String, String, Vec<String>)> = report["touching"]
        .as_array()
        .unwrap()
        .iter()
        .map(|change| {
            let mut places: Vec<String> = change["uses"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| format!("{} {}: {}", u["flow"], u["step"], u["shown"]).replace('"', ""))
                .collect();
            places.dedup();
            (
                change["rule"].as_str().unwrap().to_string(),
                change["message"].as_str().unwrap().to_string(),
                places,
            )
        })
        .collect();
    found.sort();
    let rules: Vec<(&str, &str)> = found
        .iter()
        .map(|(rule, message, _)| (rule.as_str(), message.as_str()))
        .collect();
    assert_eq!(
        rules,
        [
            (
                "request-parameter-added-required",
                "required query parameter `workspace` was added"
            ),
            (
                "response-property-added",
                "response 200 property `contacts[].name` was added"
            ),
            (
                "response-property-became-nullable",
                "response 200 property `contacts[].email` became nullable"
            ),
            (
                "response-property-became-optional",
                "response 200 property `contacts[].email` became optional"
            ),
            (
                "response-property-removed",
                "response 200 property `contacts[].first_name` was removed"
            ),
            (
                "response-property-removed",
                "response 200 property `contacts[].last_name` was removed"
            ),
        ]
    );
    // A removed name lands on the step that reads it, and on the steps
    // that take the whole list.
    assert_eq!(
        found[4].2,
        [
            "sync-contacts step 2: $steps.changed.body.contacts",
            "sync-contacts step 3: $steps.changed.body.contacts[].first_name",
            "sync-contacts step 3: $steps.changed.body.contacts",
        ]
    );
    assert!(
        report["untouched"].as_array().unwrap().is_empty(),
        "{report}"
    );
}
