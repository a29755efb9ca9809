//! Secrets and live reload, through the real binary: `${secret:NAME}` is
//! refused until the secret is set, resolves from the store once it is,
//! never sits in the store file in the clear, and a rotated secret or an
//! edited flow takes effect on `POST /api/v1/config/reload` without a
//! restart, while an invalid edit is refused and leaves the running
//! configuration alone.

use std::process::{Command, Output};
use std::time::Duration;

use patchbay_testkit::{MockUpstream, Reply};
use serde_json::{Value, json};

use crate::support::{
    CONTACTS_FLOW, Patchbay, TestProject, binary, output_with_stdin, patchbay_run, store_file,
};

const ROOT: &str = "\
connectors:
  crm:
    url: ${env:CRM_URL}
    dangerous_allow_private: true
    headers:
      Authorization: Bearer ${secret:crm_token}
";

fn patchbay(args: &[&str], stdin: Option<&str>, env: &[(&str, String)]) -> Output {
    let mut command = Command::new(binary());
    command.args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    output_with_stdin(command, stdin.unwrap_or(""))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn bearer_tokens_seen(crm: &MockUpstream) -> Vec<String> {
    crm.requests_to("POST", "/contacts")
        .iter()
        .map(|r| {
            r.headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

async fn post(url: &str, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(url)
        .json(body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn secrets_resolve_from_the_store_and_rotate_on_reload() {
    let crm = MockUpstream::start().await;
    crm.route("POST", "/contacts", Reply::json(201, json!({"id": 1})));
    let project = TestProject::new(ROOT, &[("contacts", CONTACTS_FLOW)]);
    let dir = project.path().to_str().expect("utf-8 path").to_string();
    let env = vec![("CRM_URL", crm.url())];

    // Not set yet: `check` names the secret and how to set it.
    let check = patchbay(&["check", &dir], None, &env);
    assert!(!check.status.success());
    let stderr = text(&check.stderr);
    assert!(
        stderr.contains("secret `crm_token` is not set")
            && stderr.contains("patchbay secrets set crm_token"),
        "{stderr}"
    );
    if !crate::support::sqlite_only("no store file made by a check") {
        assert!(
            !store_file(&project).exists(),
            "a check does not create the store"
        );
    }

    let set = patchbay(
        &["secrets", "set", "crm_token", "-p", &dir],
        Some("first-t0ken\n"),
        &env,
    );
    assert!(set.status.success(), "{}", text(&set.stderr));
    let check = patchbay(&["check", &dir], None, &env);
    assert!(check.status.success(), "{}", text(&check.stderr));

    // Listed by name, never by value; sealed in the store file.
    let list = patchbay(&["secrets", "list", "-p", &dir], None, &env);
    let listed = text(&list.stdout);
    let row = listed.lines().nth(1).unwrap_or_default();
    assert!(
        listed.starts_with("NAME") && row.starts_with("crm_token "),
        "{listed}"
    );
    assert!(!listed.contains("first-t0ken"));
    let store = store_file(&project);
    let files = if crate::support::sqlite_only("the secret's bytes in the store file") {
        Vec::new()
    } else {
        vec![store.clone(), store.with_extension("db-wal")]
    };
    for file in files {
        if let Ok(bytes) = std::fs::read(&file) {
            assert!(
                !bytes.windows(11).any(|w| w == b"first-t0ken"),
                "{} holds the secret in the clear",
                file.display()
            );
        }
    }
    let key_file = format!("{}.key", store.display());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file)
            .expect("key file created")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is the owner's only");
    }

    let log = project.path().join("patchbay.log");
    let node = Patchbay::spawn(patchbay_run(project.path(), &env), &log);
    let hook = format!("{}/hooks/contacts", node.base);
    let (status, answer) = post(&hook, &json!({"n": 1})).await;
    assert_eq!(status, 202, "{answer}");
    assert!(crm.wait_for_requests(1, Duration::from_secs(10)).await);
    assert_eq!(bearer_tokens_seen(&crm).await, ["Bearer first-t0ken"]);

    // Rotate while the node runs: it takes effect on reload, not before.
    let set = patchbay(
        &["secrets", "set", "crm_token", "-p", &dir],
        Some("second-t0ken"),
        &env,
    );
    assert!(set.status.success(), "{}", text(&set.stderr));
    let reload = format!("{}/api/v1/config/reload", node.base);
    let (status, reloaded) = post(&reload, &json!({})).await;
    assert_eq!(status, 200, "{reloaded}");
    assert_eq!(reloaded["changed"], true, "{reloaded}");
    let (status, answer) = post(&hook, &json!({"n": 2})).await;
    assert_eq!(status, 202, "{answer}");
    assert!(crm.wait_for_requests(2, Duration::from_secs(10)).await);
    assert_eq!(
        bearer_tokens_seen(&crm).await,
        ["Bearer first-t0ken", "Bearer second-t0ken"]
    );
    // Nothing changed since: a no-op.
    let (status, again) = post(&reload, &json!({})).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["changed"], false, "{again}");
    assert_eq!(again["version"], reloaded["version"]);

    // An invalid edit is refused with its problems; the old flow still runs.
    let flow_file = project.path().join("flows/contacts.yaml");
    let edit_flow = |from: &str, to: &str| {
        std::fs::write(&flow_file, CONTACTS_FLOW.replace(from, to)).expect("flow written")
    };
    edit_flow("body: '.'", "body: '.[' ");
    let (status, refused) = post(&reload, &json!({})).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["code"], "invalid_config");
    let problems = refused["error"]["details"]["problems"].to_string();
    assert!(problems.contains("contacts.yaml"), "{problems}");
    let (status, _) = post(&hook, &json!({"n": 3})).await;
    assert_eq!(status, 202);
    assert!(crm.wait_for_requests(3, Duration::from_secs(10)).await);

    // A valid edit: a new webhook path serves at once, the old one is gone.
    edit_flow("/hooks/contacts", "/hooks/people");
    let (status, reloaded) = post(&reload, &json!({})).await;
    assert_eq!(status, 200, "{reloaded}");
    assert_eq!(reloaded["changed"], true);
    let (status, _) = post(&format!("{}/hooks/people", node.base), &json!({"n": 4})).await;
    assert_eq!(status, 202);
    let (status, _) = post(&hook, &json!({"n": 5})).await;
    assert_eq!(status, 404);
    assert!(crm.wait_for_requests(4, Duration::from_secs(10)).await);

    // The secret never reached the log.
    let status = node.terminate();
    assert!(status.success());
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!logged.contains("t0ken"), "a secret is in the log");

    // Deleting it makes the project invalid again.
    let delete = patchbay(&["secrets", "delete", "crm_token", "-p", &dir], None, &env);
    assert!(delete.status.success(), "{}", text(&delete.stderr));
    let check = patchbay(&["check", &dir], None, &env);
    assert!(!check.status.success());
    let missing = patchbay(&["secrets", "delete", "crm_token", "-p", &dir], None, &env);
    assert_eq!(missing.status.code(), Some(1));
}

#[tokio::test]
async fn a_secret_needs_its_master_key() {
    let project = TestProject::new(ROOT, &[("contacts", CONTACTS_FLOW)]);
    let dir = project.path().to_str().expect("utf-8 path").to_string();
    let env = vec![("CRM_URL", "http://127.0.0.1:9".to_string())];
    let set = patchbay(
        &["secrets", "set", "crm_token", "-p", &dir],
        Some("t0ken"),
        &env,
    );
    assert!(set.status.success(), "{}", text(&set.stderr));

    // Another key cannot open it, and says so without showing anything.
    let mut wrong = env.clone();
    wrong.push((
        "PATCHBAY_MASTER_KEY",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_string(),
    ));
    let check = patchbay(&["check", &dir], None, &wrong);
    assert!(!check.status.success());
    let stderr = text(&check.stderr);
    assert!(stderr.contains("wrong master key"), "{stderr}");
    assert!(!stderr.contains("t0ken"));

    // Bad names and empty values are refused.
    let bad = patchbay(
        &["secrets", "set", "crm-token", "-p", &dir],
        Some("x"),
        &env,
    );
    assert!(
        text(&bad.stderr).contains("not a valid secret name"),
        "{}",
        text(&bad.stderr)
    );
    let empty = patchbay(&["secrets", "set", "crm_token", "-p", &dir], Some(""), &env);
    assert!(text(&empty.stderr).contains("the value is empty"));

    // Without the key file there is no key, and none is made up: not by a
    // check, and not by setting another secret.
    let key_file = format!("{}.key", store_file(&project).display());
    std::fs::remove_file(&key_file).unwrap();
    let check = patchbay(&["check", &dir], None, &env);
    let stderr = text(&check.stderr);
    assert!(stderr.contains("no master key"), "{stderr}");
    let other = patchbay(&["secrets", "set", "other", "-p", &dir], Some("x"), &env);
    assert!(!other.status.success());
    assert!(text(&other.stderr).contains("no master key"));
    assert!(!std::path::Path::new(&key_file).exists());
}
