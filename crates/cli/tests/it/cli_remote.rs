//! The CLI against a running node (`--url`, token from `PATCHBAY_TOKEN`):
//! every management action has a command, and each one really acts on the
//! node — checked through the API afterwards, not just by exit codes.

use std::process::{Command, Output};
use std::time::Duration;

use patchbay_testkit::Reply;
use serde_json::{Value, json};

use crate::support::{
    ADMIN_TOKEN, READ_TOKEN, binary, eventually, output_with_stdin, tokened_contacts_node,
};

/// Runs `patchbay ARGS --url BASE` with `token` in the environment.
fn cli(base: &str, token: Option<&str>, args: &[&str], stdin: &str) -> Output {
    let mut command = Command::new(binary());
    command
        .args(args)
        .args(["--url", base])
        .env_remove("PATCHBAY_TOKEN");
    if let Some(token) = token {
        command.env("PATCHBAY_TOKEN", token);
    }
    output_with_stdin(command, stdin)
}

fn json_out(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "command failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

async fn api(base: &str, path: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json")
}

async fn run_status(base: &str, id: &str) -> String {
    api(base, &format!("/api/v1/runs/{id}")).await["run"]["status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn every_api_action_has_a_command() {
    let (crm, _project, node) = tokened_contacts_node().await;
    let base = node.base.clone();
    let admin = Some(ADMIN_TOKEN);

    // Without a token: a clear refusal that names the variable.
    let refused = cli(&base, None, &["flows", "list"], "");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("unauthorized") && stderr.contains("PATCHBAY_TOKEN"),
        "{stderr}"
    );
    // A read token may list but not trigger.
    let flows = json_out(&cli(
        &base,
        Some(READ_TOKEN),
        &["flows", "list", "--json"],
        "",
    ));
    assert!(flows.to_string().contains("contacts"), "{flows}");
    let forbidden = cli(
        &base,
        Some(READ_TOKEN),
        &["flows", "trigger", "contacts"],
        "",
    );
    assert!(!forbidden.status.success());
    assert!(String::from_utf8_lossy(&forbidden.stderr).contains("forbidden"));

    let shown = json_out(&cli(
        &base,
        admin,
        &["flows", "show", "contacts", "--json"],
        "",
    ));
    assert!(shown.to_string().contains("push"), "{shown}");

    // Trigger from standard input; the run dies on the 400.
    let started = json_out(&cli(
        &base,
        admin,
        &["flows", "trigger", "contacts", "--input", "-"],
        r#"{"name": "Ada"}"#,
    ));
    let id = started["run_id"].as_str().expect("run id").to_string();
    assert!(
        eventually(Duration::from_secs(10), || async {
            run_status(&base, &id).await == "dead"
        })
        .await,
        "the run did not die"
    );
    let listed = json_out(&cli(
        &base,
        admin,
        &["runs", "list", "--status", "dead", "--json"],
        "",
    ));
    assert!(listed.to_string().contains(&id), "{listed}");
    let shown = json_out(&cli(&base, admin, &["runs", "show", &id, "--json"], ""));
    assert_eq!(shown["run"]["status"], "dead");
    let dead = json_out(&cli(&base, admin, &["dead-letters", "list", "--json"], ""));
    assert!(dead.to_string().contains(&id), "{dead}");

    // Fix the upstream, replay through the CLI, see it succeed.
    crm.route("POST", "/contacts", Reply::json(201, json!({"id": 7})));
    let replayed = json_out(&cli(&base, admin, &["dead-letters", "replay", &id], ""));
    assert!(replayed.to_string().contains(&id), "{replayed}");
    assert!(
        eventually(Duration::from_secs(10), || async {
            run_status(&base, &id).await == "succeeded"
        })
        .await,
        "the replayed run did not succeed"
    );

    // Cancel a run that waits on a held upstream.
    crm.hold();
    let started = json_out(&cli(&base, admin, &["flows", "trigger", "contacts"], ""));
    let waiting = started["run_id"].as_str().expect("run id").to_string();
    assert!(crm.wait_for_requests(3, Duration::from_secs(10)).await);
    let cancelled = cli(&base, admin, &["runs", "cancel", &waiting], "");
    assert!(
        cancelled.status.success(),
        "{}",
        String::from_utf8_lossy(&cancelled.stderr)
    );
    crm.release();
    assert_eq!(run_status(&base, &waiting).await, "cancelled");

    // Connectors' health, configuration, reload.
    let health = json_out(&cli(&base, admin, &["connectors", "crm", "--json"], ""));
    assert_eq!(health["name"], "crm", "{health}");
    let config = json_out(&cli(&base, admin, &["config", "show", "--json"], ""));
    let version = config["version"].as_str().expect("version").to_string();
    let reloaded = json_out(&cli(&base, admin, &["config", "reload"], ""));
    assert_eq!(reloaded["changed"], false, "{reloaded}");
    assert_eq!(reloaded["version"], version);

    // Secrets: set from standard input, listed by name, deleted.
    let set = cli(
        &base,
        admin,
        &["secrets", "set", "crm_token"],
        "t0ken-value\n",
    );
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let secrets = json_out(&cli(&base, admin, &["secrets", "list", "--json"], ""));
    assert!(secrets.to_string().contains("crm_token"), "{secrets}");
    assert!(!secrets.to_string().contains("t0ken-value"));
    let deleted = cli(&base, admin, &["secrets", "delete", "crm_token"], "");
    assert!(
        deleted.status.success(),
        "{}",
        String::from_utf8_lossy(&deleted.stderr)
    );
    let secrets = json_out(&cli(&base, admin, &["secrets", "list", "--json"], ""));
    assert!(!secrets.to_string().contains("crm_token"), "{secrets}");

    // The audit log records the actions above, never a secret's value.
    let audit = json_out(&cli(&base, admin, &["audit", "--json"], ""));
    let audit = audit.to_string();
    for route in ["/api/v1/config/reload", "/api/v1/secrets/{name}"] {
        assert!(audit.contains(route), "{route} not in {audit}");
    }
    assert!(!audit.contains("t0ken-value"), "{audit}");

    node.stop_cleanly();
}
