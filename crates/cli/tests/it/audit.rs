//! The audit log, through the real binary: a reload, a replay, a secret set
//! and refused tokens each leave an entry saying who, what, when, from where
//! and how it ended, readable through the API and `patchbay audit` (store
//! file and `--url`); a secret's value never appears in it; and an action
//! whose entry cannot be written is refused and not done.

use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{
    ADMIN_TOKEN, CONTACTS_FLOW, Patchbay, READ_TOKEN, TestProject, binary, eventually,
    output_with_stdin, patchbay_run, store_file, tokened_contacts_node, tokened_root,
};

const SECRET_VALUE: &str = "audit-s3cret-value-never-shown";

/// `method` on `path` with `token`; the status and the JSON answer.
async fn call(base: &str, method: &str, path: &str, token: &str, body: Value) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = reqwest::Client::new()
        .request(method, format!("{base}{path}"))
        .bearer_auth(token);
    if !body.is_null() {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Every entry of the audit log, newest first, through the API.
async fn audit_log(base: &str) -> Vec<Value> {
    let (status, page) = call(
        base,
        "GET",
        "/api/v1/audit?limit=500",
        ADMIN_TOKEN,
        json!(null),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().expect("items").clone()
}

/// The newest entry for `method` on `route` by `actor`, if any.
fn find<'a>(entries: &'a [Value], actor: &str, method: &str, route: &str) -> Option<&'a Value> {
    entries
        .iter()
        .find(|e| e["actor"] == actor && e["method"] == method && e["route"] == route)
}

fn cli(args: &[&str], token: Option<&str>, stdin: &str) -> Output {
    let mut command = Command::new(binary());
    command.args(args).env_remove("PATCHBAY_TOKEN");
    if let Some(token) = token {
        command.env("PATCHBAY_TOKEN", token);
    }
    output_with_stdin(command, stdin)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Checks the fields every entry of `method` on `route` must have.
fn assert_entry(entry: &Value, actor: &str, target: Option<&str>, status: u16) {
    assert_eq!(entry["actor"], actor, "{entry}");
    assert_eq!(entry["target"], json!(target), "{entry}");
    assert_eq!(entry["status"], status, "{entry}");
    let peer = entry["peer"].as_str().unwrap_or_default();
    assert!(peer.starts_with("127.0.0.1:"), "peer {peer:?} in {entry}");
    let at = entry["at"].as_str().unwrap_or_default();
    let at = chrono::DateTime::parse_from_rfc3339(at).expect("`at` is a time");
    let age = chrono::Utc::now() - at.with_timezone(&chrono::Utc);
    assert!(
        age >= chrono::Duration::zero() && age < chrono::Duration::minutes(5),
        "{entry}"
    );
}

#[tokio::test]
async fn management_actions_and_refused_tokens_are_audited() {
    let (_crm, project, node) = tokened_contacts_node().await;
    let base = node.base.clone();

    // Refused: an unknown token, and a known one without the scope.
    let (status, _) = call(
        &base,
        "GET",
        "/api/v1/runs",
        "not-a-known-token-at-all",
        json!(null),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = call(
        &base,
        "POST",
        "/api/v1/config/reload",
        READ_TOKEN,
        json!({}),
    )
    .await;
    assert_eq!(status, 403);

    // A reload, through the CLI.
    let reloaded = cli(&["config", "reload", "--url", &base], Some(ADMIN_TOKEN), "");
    assert!(reloaded.status.success(), "{}", text(&reloaded.stderr));

    // A run that dies, then its replay.
    let (status, started) = call(
        &base,
        "POST",
        "/api/v1/flows/contacts/runs",
        ADMIN_TOKEN,
        json!({"n": 1}),
    )
    .await;
    assert_eq!(status, 202, "{started}");
    let id = started["run_id"].as_str().expect("run id").to_string();
    assert!(
        eventually(Duration::from_secs(10), || async {
            let (_, run) = call(
                &base,
                "GET",
                &format!("/api/v1/runs/{id}"),
                ADMIN_TOKEN,
                json!(null),
            )
            .await;
            run["run"]["status"] == "dead"
        })
        .await,
        "the run did not die"
    );
    let (status, replayed) = call(
        &base,
        "POST",
        &format!("/api/v1/runs/{id}/replay"),
        ADMIN_TOKEN,
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{replayed}");

    // A secret, set through the CLI from standard input.
    let set = cli(
        &["secrets", "set", "crm_token", "--url", &base],
        Some(ADMIN_TOKEN),
        SECRET_VALUE,
    );
    assert!(set.status.success(), "{}", text(&set.stderr));

    // Refusals are written off the request's path: wait for them.
    assert!(
        eventually(Duration::from_secs(10), || async {
            let entries = audit_log(&base).await;
            find(&entries, "anonymous", "GET", "/api/v1/runs").is_some()
                && find(&entries, "reader", "POST", "/api/v1/config/reload").is_some()
        })
        .await,
        "the refusals were not recorded"
    );
    let entries = audit_log(&base).await;
    let entry = |actor: &str, method: &str, route: &str| {
        find(&entries, actor, method, route)
            .unwrap_or_else(|| panic!("no entry for {actor} {method} {route} in {entries:#?}"))
            .clone()
    };
    assert_entry(
        &entry("anonymous", "GET", "/api/v1/runs"),
        "anonymous",
        None,
        401,
    );
    assert_entry(
        &entry("reader", "POST", "/api/v1/config/reload"),
        "reader",
        None,
        403,
    );
    assert_entry(
        &entry("admin", "POST", "/api/v1/config/reload"),
        "admin",
        None,
        200,
    );
    assert_entry(
        &entry("admin", "POST", "/api/v1/flows/{flow}/runs"),
        "admin",
        Some("contacts"),
        202,
    );
    assert_entry(
        &entry("admin", "POST", "/api/v1/runs/{id}/replay"),
        "admin",
        Some(&id),
        200,
    );
    assert_entry(
        &entry("admin", "PUT", "/api/v1/secrets/{name}"),
        "admin",
        Some("crm_token"),
        204,
    );
    // Reads by an allowed caller are not actions: none recorded.
    assert!(
        !entries
            .iter()
            .any(|e| e["method"] == "GET" && e["actor"] == "admin"),
        "{entries:#?}"
    );
    // Newest first.
    let ids: Vec<&str> = entries.iter().filter_map(|e| e["id"].as_str()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted);

    // The CLI, through the API and from the store file.
    let remote = cli(&["audit", "--url", &base, "--json"], Some(ADMIN_TOKEN), "");
    assert!(remote.status.success(), "{}", text(&remote.stderr));
    let remote: Value = serde_json::from_slice(&remote.stdout).expect("JSON");
    assert_eq!(
        remote["items"].as_array().map(Vec::len),
        Some(entries.len()),
        "{remote}"
    );
    let refused = cli(&["audit", "--url", &base], Some(READ_TOKEN), "");
    assert!(
        !refused.status.success(),
        "the audit log needs the admin scope"
    );
    assert!(
        text(&refused.stderr).contains("forbidden"),
        "{}",
        text(&refused.stderr)
    );
    let dir = project.path().to_str().expect("utf-8 path");
    let local = cli(&["audit", "-p", dir], None, "");
    assert!(local.status.success(), "{}", text(&local.stderr));
    let table = text(&local.stdout);
    assert!(table.starts_with("ID "), "{table}");
    let row = table
        .lines()
        .find(|line| line.contains("/api/v1/runs/{id}/replay"))
        .unwrap_or_else(|| panic!("no replay in {table}"));
    assert!(
        row.contains("admin")
            && row.contains(&id)
            && row.contains(" 200 ")
            && row.contains("127.0.0.1:"),
        "{row}"
    );
    let local_json = cli(&["audit", "-p", dir, "--json", "--limit", "2"], None, "");
    let local_json: Value = serde_json::from_slice(&local_json.stdout).expect("JSON");
    assert_eq!(
        local_json["items"].as_array().map(Vec::len),
        Some(2),
        "{local_json}"
    );
    // The next page continues where that one stopped.
    let cursor = local_json["next_cursor"].as_str().expect("a next page");
    let next = cli(
        &["audit", "-p", dir, "--json", "--cursor", cursor],
        None,
        "",
    );
    let next: Value = serde_json::from_slice(&next.stdout).expect("JSON");
    let all = cli(&["audit", "-p", dir, "--json"], None, "");
    let all: Value = serde_json::from_slice(&all.stdout).expect("JSON");
    assert_eq!(next["items"][0], all["items"][2], "{next}\n{all}");

    // The secret's value is nowhere in the audit log, however it is read.
    let everything = format!("{}\n{}\n{}\n{}", json!(entries), remote, table, local_json);
    assert!(
        !everything.contains(SECRET_VALUE),
        "the audit log shows a secret"
    );
    assert!(!everything.contains(ADMIN_TOKEN) && !everything.contains(READ_TOKEN));

    node.stop_cleanly();
}

#[tokio::test]
async fn an_action_whose_audit_entry_cannot_be_written_is_not_done() {
    if crate::support::sqlite_only("dropping the audit table through the SQLite file") {
        return;
    }
    let project = TestProject::new(&tokened_root(), &[("contacts", CONTACTS_FLOW)]);
    let log = project.path().join("patchbay.log");
    let node = Patchbay::spawn(
        patchbay_run(
            project.path(),
            &[("CRM_URL", "http://127.0.0.1:9".to_string())],
        ),
        &log,
    );
    let base = node.base.clone();

    // The audit table goes away under the running node.
    {
        use sqlx::ConnectOptions as _;
        let mut connection = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(store_file(&project))
            .busy_timeout(Duration::from_secs(10))
            .connect()
            .await
            .expect("open the store");
        sqlx::query("DROP TABLE audit")
            .execute(&mut connection)
            .await
            .expect("audit table dropped");
    }

    let (status, refused) = call(
        &base,
        "PUT",
        "/api/v1/secrets/crm_token",
        ADMIN_TOKEN,
        json!({"value": SECRET_VALUE}),
    )
    .await;
    assert_eq!(status, 503, "{refused}");
    assert_eq!(refused["error"]["code"], "unavailable", "{refused}");
    let (status, secrets) = call(&base, "GET", "/api/v1/secrets", ADMIN_TOKEN, json!(null)).await;
    assert_eq!(status, 200, "{secrets}");
    assert_eq!(
        secrets["items"],
        json!([]),
        "the refused action was done: {secrets}"
    );
    // Reads go on.
    let (status, _) = call(&base, "GET", "/api/v1/flows", READ_TOKEN, json!(null)).await;
    assert_eq!(status, 200);

    node.stop_cleanly();
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(logged.contains("cannot write to the audit log"), "{logged}");
}
