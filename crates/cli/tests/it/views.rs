//! Every list and show command prints a table (or a readable rendering)
//! for people and, with `--json`, the management API's document — the same
//! document whether it read the project's store (`-p DIR`) or asked the
//! running node (`--url`). Colours only on a terminal, never with
//! `NO_COLOR`.

use std::process::{Command, Output};
use std::time::Duration;

use patchbay_testkit::Reply;
use serde_json::{Value, json};

use crate::support::{ADMIN_TOKEN, binary, eventually, output_with_stdin, tokened_contacts_node};

/// `patchbay ARGS` with the node's environment (its variables and token).
fn patchbay(args: &[&str], crm: &str) -> Output {
    let mut command = Command::new(binary());
    command
        .args(args)
        .env("CRM_URL", crm)
        .env("PATCHBAY_TOKEN", ADMIN_TOKEN)
        .env_remove("NO_COLOR");
    output_with_stdin(command, "")
}

fn json_of(args: &[&str], output: &Output) -> Value {
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?} did not print JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// `GET url` with the admin token, as JSON.
async fn admin_get(url: String) -> Value {
    admin(reqwest::Method::GET, url, None).await
}

/// `POST url` with `body` and the admin token, as JSON.
async fn admin_post(url: String, body: Value) -> Value {
    admin(reqwest::Method::POST, url, Some(body)).await
}

async fn admin(method: reqwest::Method, url: String, body: Option<Value>) -> Value {
    let mut request = reqwest::Client::new()
        .request(method, url)
        .bearer_auth(ADMIN_TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap().json().await.unwrap()
}

/// Starts a run of `contacts` with `input`; its id.
async fn start_contact(base: &str, input: Value) -> String {
    let answer = admin_post(format!("{base}/api/v1/flows/contacts/runs"), input).await;
    answer["run_id"].as_str().unwrap().to_string()
}

/// Whether the run `id` reaches `status` within ten seconds.
async fn reaches(base: &str, id: &str, status: &str) -> bool {
    eventually(Duration::from_secs(10), || async {
        admin_get(format!("{base}/api/v1/runs/{id}")).await["run"]["status"] == status
    })
    .await
}

/// What may differ between two reads of the same thing: when the
/// configuration was loaded (now, for a local read).
fn settled(mut document: Value) -> Value {
    if let Some(object) = document.as_object_mut() {
        object.remove("loaded_at");
    }
    document
}

/// `text` without its colour codes (`ESC [ ... m`).
fn uncoloured(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `command` run on a terminal (through `script`), and what it printed.
fn on_a_terminal(command: &str, crm: &str, no_color: bool) -> String {
    let mut script = Command::new("script");
    script
        .args(["-qec", command, "/dev/null"])
        .env("CRM_URL", crm)
        .env("PATCHBAY_TOKEN", ADMIN_TOKEN);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_list_and_show_command_prints_a_table_and_the_same_json_locally_and_remotely() {
    let (crm, project, node) = tokened_contacts_node().await;
    let base = node.base.clone();
    let dir = project.path().to_str().unwrap().to_string();

    // Something in every list: a dead run (crm refuses), a succeeded one,
    // a secret, audit entries.
    let dead = start_contact(&base, json!({ "name": "Ada" })).await;
    assert!(reaches(&base, &dead, "dead").await, "the run did not die");
    crm.route("POST", "/contacts", Reply::json(201, json!({ "id": 7 })));
    let ok = start_contact(&base, json!({ "name": "Grace" })).await;
    assert!(reaches(&base, &ok, "succeeded").await);
    let set = reqwest::Client::new()
        .put(format!("{base}/api/v1/secrets/crm_token"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "value": "t0ken-value" }))
        .send()
        .await
        .unwrap();
    assert!(set.status().is_success(), "{}", set.status());

    let crm_url = crm.url();
    // Each command, and what its table must show.
    let commands: Vec<(Vec<&str>, &str)> = vec![
        (vec!["runs", "list"], "ATTEMPTS"),
        (vec!["runs", "list", "--status", "dead"], &dead),
        (vec!["runs", "show", &dead], "steps"),
        (vec!["dead-letters", "list"], &dead),
        (vec!["flows", "list"], "contacts"),
        (vec!["flows", "show", "contacts"], "└─ push"),
        (vec!["config", "show"], "connectors  crm"),
        (vec!["secrets", "list"], "crm_token"),
        (vec!["audit"], "/api/v1/secrets/{name}"),
        (vec!["drift"], "no contract drift"),
        (vec!["endpoints", "list"], "no delivery"),
    ];
    for (args, shows) in &commands {
        let local_args: Vec<&str> = args.iter().copied().chain(["--json", "-p", &dir]).collect();
        let remote_args: Vec<&str> = args
            .iter()
            .copied()
            .chain(["--json", "--url", &base])
            .collect();
        let local = settled(json_of(&local_args, &patchbay(&local_args, &crm_url)));
        let remote = settled(json_of(&remote_args, &patchbay(&remote_args, &crm_url)));
        assert_eq!(local, remote, "{args:?}: local and remote documents differ");
        // `-o json` is `--json`.
        let with_o: Vec<&str> = args
            .iter()
            .copied()
            .chain(["-o", "json", "-p", &dir])
            .collect();
        assert_eq!(
            settled(json_of(&with_o, &patchbay(&with_o, &crm_url))),
            local,
            "{args:?} -o json"
        );

        // For people, the same data either way; coloured on a terminal.
        for place in [format!("-p {dir}"), format!("--url {base}")] {
            let command = format!("{} {} {place}", binary(), args.join(" "));
            let table = on_a_terminal(&command, &crm_url, false);
            assert!(
                uncoloured(&table).contains(shows),
                "{command}: no `{shows}` in\n{table}"
            );
            let plain = on_a_terminal(&command, &crm_url, true);
            assert!(
                !plain.contains('\u{1b}'),
                "{command}: colour despite NO_COLOR:\n{plain}"
            );
            assert!(plain.contains(shows), "{command}: no `{shows}` in\n{plain}");
        }
    }

    // Statuses are coloured on a terminal: the dead run in red.
    let command = format!("{} runs list -p {dir}", binary());
    let coloured = on_a_terminal(&command, &crm_url, false);
    assert!(coloured.contains("\u{1b}[31mdead"), "{coloured}");

    // The run rendered step by step: the attempt, the call and its answer,
    // and the error of the dead one.
    let shown = patchbay(&["runs", "show", &dead, "-p", &dir], &crm_url);
    let shown = String::from_utf8_lossy(&shown.stdout).into_owned();
    assert!(shown.contains("#1 push"), "{shown}");
    assert!(shown.contains("failed"), "{shown}");
    assert!(
        shown.contains("crm: POST /contacts answered 400"),
        "{shown}"
    );
    assert!(shown.contains("[client_error]"), "{shown}");
    assert!(!shown.contains('\u{1b}'), "colour on a pipe: {shown}");

    // Connectors' health lives in the node: a table and JSON from it.
    let args = ["connectors", "--url", &base];
    let table = patchbay(&args, &crm_url);
    assert!(
        String::from_utf8_lossy(&table.stdout).contains("BREAKER"),
        "{}",
        String::from_utf8_lossy(&table.stdout)
    );
    let document = json_of(
        &args,
        &patchbay(&["connectors", "--json", "--url", &base], &crm_url),
    );
    assert_eq!(document["items"][0]["name"], "crm", "{document}");
    let one = json_of(
        &args,
        &patchbay(&["connectors", "crm", "--json", "--url", &base], &crm_url),
    );
    assert_eq!(one["name"], "crm");

    node.stop_cleanly();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_run_replayed_with_an_edited_input_succeeds_and_keeps_both_inputs() {
    let (crm, project, node) = tokened_contacts_node().await;
    let base = node.base.clone();
    let dir = project.path().to_str().unwrap().to_string();
    // The upstream refuses a contact without an e-mail address.
    crm.route_fn("POST", "/contacts", |request| {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
        if body["email"].is_string() {
            Reply::json(201, json!({ "id": 9 }))
        } else {
            Reply::json(422, json!({ "error": "email is required" }))
        }
    });
    let id = start_contact(&base, json!({ "name": "Ada" })).await;
    let status = |id: String| {
        let base = base.clone();
        async move { admin_get(format!("{base}/api/v1/runs/{id}")).await }
    };
    assert!(reaches(&base, &id, "dead").await);

    // An input that is not JSON is refused, and the run stays dead.
    let mut bad = Command::new(binary());
    bad.args(["runs", "replay", &id, "--input", "-", "--url", &base])
        .env("PATCHBAY_TOKEN", ADMIN_TOKEN);
    let refused = output_with_stdin(bad, "{ name: Ada");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("not valid JSON"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert_eq!(status(id.clone()).await["run"]["status"], "dead");

    // The corrected input, through the node's API.
    let mut replay = Command::new(binary());
    replay
        .args(["runs", "replay", &id, "--input", "-", "--url", &base])
        .env("PATCHBAY_TOKEN", ADMIN_TOKEN);
    let replayed = output_with_stdin(replay, r#"{"name": "Ada", "email": "ada@example.com"}"#);
    assert!(
        replayed.status.success(),
        "{}",
        String::from_utf8_lossy(&replayed.stderr)
    );
    assert!(
        reaches(&base, &id, "succeeded").await,
        "the replayed run did not succeed"
    );
    let document = status(id.clone()).await;
    assert_eq!(document["run"]["input"]["email"], "ada@example.com");
    assert_eq!(
        document["input_edits"][0]["previous"],
        json!({ "name": "Ada" }),
        "{document}"
    );
    // The journal keeps the first attempt (set aside) and the new one.
    let attempts: Vec<(Value, Value)> = document["journal"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["status"].clone(), e["current"].clone()))
        .collect();
    assert_eq!(
        attempts,
        vec![
            (json!("failed"), json!(false)),
            (json!("succeeded"), json!(true))
        ]
    );
    // The upstream saw both bodies.
    let bodies: Vec<Value> = crm
        .requests()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap_or_default())
        .collect();
    assert!(bodies.contains(&json!({ "name": "Ada" })), "{bodies:?}");
    assert!(
        bodies.contains(&json!({ "name": "Ada", "email": "ada@example.com" })),
        "{bodies:?}"
    );
    // `runs show` says what the input was before.
    let shown = Command::new(binary())
        .args(["runs", "show", &id, "-p", &dir])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("input edited"), "{shown}");
    assert!(shown.contains(r#"was {"name":"Ada"}"#), "{shown}");

    // A run that is not dead is not replayed, and says so.
    let mut again = Command::new(binary());
    again
        .args(["runs", "replay", &id, "--input", "-", "-p", &dir])
        .env("CRM_URL", crm.url());
    let refused = output_with_stdin(again, "{}");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("it is succeeded"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    node.stop_cleanly();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_errors_are_grouped_and_a_group_is_replayed_at_once() {
    let (crm, _project, node) = tokened_contacts_node().await;
    let base = node.base.clone();
    let mut ids = Vec::new();
    for name in ["Ada", "Grace", "Edsger"] {
        ids.push(start_contact(&base, json!({ "name": name })).await);
    }
    assert!(
        eventually(Duration::from_secs(10), || async {
            let dead = admin_get(format!("{base}/api/v1/dead-letters")).await;
            dead["items"].as_array().map(Vec::len) == Some(3)
        })
        .await
    );

    let groups = admin_get(format!("{base}/api/v1/errors")).await;
    let items = groups["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{groups}");
    let group = &items[0];
    assert_eq!(group["count"], 3);
    assert_eq!(group["flow"], "contacts");
    assert_eq!(group["class"], "client_error");
    assert_eq!(group["latest_run"], ids[2].as_str(), "the newest run");
    let error = group["error"].as_str().unwrap().to_string();
    assert!(error.contains("answered 400"), "{error}");
    // No succeeded run has an error to group; other flows have none.
    let none = admin_get(format!("{base}/api/v1/errors?flow=other")).await;
    assert_eq!(none["items"], json!([]));

    // The group replayed as one, once the upstream is fixed.
    crm.route("POST", "/contacts", Reply::json(201, json!({ "id": 1 })));
    let replayed = admin_post(
        format!("{base}/api/v1/dead-letters/replay"),
        json!({ "flow": "contacts", "error": error }),
    )
    .await;
    assert_eq!(
        replayed["replayed"].as_array().map(Vec::len),
        Some(3),
        "{replayed}"
    );
    assert!(
        eventually(Duration::from_secs(10), || async {
            let groups = admin_get(format!("{base}/api/v1/errors")).await;
            groups["items"] == json!([])
        })
        .await,
        "the replayed runs did not succeed"
    );
    // An error no dead run has replays nothing.
    let nothing = admin_post(
        format!("{base}/api/v1/dead-letters/replay"),
        json!({ "error": "no such error" }),
    )
    .await;
    assert_eq!(nothing["replayed"], json!([]));
    node.stop_cleanly();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connector_statistics_survive_a_configuration_reload() {
    let (_crm, project, node) = tokened_contacts_node().await;
    let base = node.base.clone();
    // One call, refused: one call and one error on the connector.
    start_contact(&base, json!({ "name": "Ada" })).await;
    let health = || admin_get(format!("{base}/api/v1/connectors/crm"));
    assert!(
        eventually(Duration::from_secs(10), || async {
            health().await["recent"]["calls"] == 1
        })
        .await
    );
    // A change on disk, reloaded: the connectors are built again.
    std::fs::write(
        project.path().join("flows/other.yaml"),
        "trigger: { manual: {} }\nsteps:\n  - transform: .\n",
    )
    .unwrap();
    let reloaded = admin_post(format!("{base}/api/v1/config/reload"), json!({})).await;
    assert_eq!(reloaded["changed"], true, "{reloaded}");
    let after = health().await;
    assert_eq!(after["recent"]["calls"], 1, "{after}");
    assert_eq!(after["recent"]["errors"], 1, "{after}");
    assert!(
        after["last_error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("400")),
        "{after}"
    );
    node.stop_cleanly();
}
