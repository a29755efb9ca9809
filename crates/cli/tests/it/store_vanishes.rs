//! A store that vanishes, and the master key beside it, through the real
//! binary: deleting the store's folder under a running node makes intake
//! answer 503 and `/healthz` fail (with one error in the log); a node never
//! mints a new master key beside sealed data without
//! `--dangerous-new-master-key`; a key file others can read is refused.

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{
    Patchbay, TestProject, binary, eventually, output_with_stdin, patchbay_run, store_file,
};

const ROOT: &str = "connectors: {}\n";

const ECHO_FLOW: &str = "\
trigger: { webhook: { path: /hooks/echo } }
steps:
  - transform: '.'
";

async fn post_event(client: &reqwest::Client, base: &str) -> u16 {
    client
        .post(format!("{base}/hooks/echo"))
        .json(&json!({ "n": 1 }))
        .send()
        .await
        .expect("webhook sent")
        .status()
        .as_u16()
}

async fn health(client: &reqwest::Client, base: &str) -> (u16, Value) {
    let response = client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("health answered");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_store_deleted_under_a_running_node_stops_intake_and_fails_health() {
    if crate::support::sqlite_only("the SQLite file deleted under the node") {
        return;
    }
    let project = TestProject::new(ROOT, &[("echo", ECHO_FLOW)]);
    let log = project.path().join("patchbay.log");
    let node = Patchbay::spawn(patchbay_run(project.path(), &[]), &log);
    let client = reqwest::Client::new();
    assert_eq!(post_event(&client, &node.base).await, 202);
    assert_eq!(health(&client, &node.base).await.0, 200);

    let folder = store_file(&project).parent().unwrap().to_path_buf();
    std::fs::remove_dir_all(&folder).expect("delete the store folder");

    let failed = eventually(Duration::from_secs(10), || async {
        health(&client, &node.base).await.0 == 503
    })
    .await;
    let last = health(&client, &node.base).await;
    assert!(failed, "/healthz still answers {last:?}");
    let reason = last.1["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("patchbay.db"), "{}", last.1);
    // Nothing more is acknowledged into a file no restart will find.
    for _ in 0..3 {
        assert_eq!(post_event(&client, &node.base).await, 503);
    }

    node.terminate();
    let text = std::fs::read_to_string(&log).unwrap();
    let noticed = text
        .lines()
        .filter(|line| line.contains("ERROR") && line.contains("removed or replaced"))
        .count();
    assert_eq!(noticed, 1, "one error when the store vanished:\n{text}");
}

fn set_secret(dir: &str) {
    let mut command = Command::new(binary());
    command
        .args(["secrets", "set", "crm_token", "-p", dir])
        .env_remove("PATCHBAY_MASTER_KEY");
    let set = output_with_stdin(command, "t0ken-value");
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
}

/// `patchbay run` expected to refuse to start: its output once it exits,
/// or a failure (after killing it) if it is still running after 30 s.
fn run_until_exit(dir: &str) -> std::process::Output {
    use std::process::Stdio;
    let mut child = Command::new(binary())
        .args(["run", "--listen", "127.0.0.1:0", dir])
        .env_remove("PATCHBAY_MASTER_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start patchbay");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("poll patchbay").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("patchbay started instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("patchbay output")
}

#[tokio::test]
async fn a_node_never_mints_a_master_key_beside_sealed_data() {
    if crate::support::sqlite_only("the key file beside the SQLite file") {
        return;
    }
    let project = TestProject::new(ROOT, &[("echo", ECHO_FLOW)]);
    let dir = project.path().to_str().unwrap().to_string();
    set_secret(&dir);
    let key_file = format!("{}.key", store_file(&project).display());
    std::fs::remove_file(&key_file).unwrap();

    let refused = run_until_exit(&dir);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains(&key_file), "{stderr}");
    assert!(stderr.contains("--dangerous-new-master-key"), "{stderr}");
    assert!(
        !std::path::Path::new(&key_file).exists(),
        "a key was minted"
    );

    // With the flag, the node starts on a new key, and the data sealed with
    // the lost one is gone.
    let log = project.path().join("patchbay.log");
    let mut command = patchbay_run(project.path(), &[]);
    command
        .arg("--dangerous-new-master-key")
        .env_remove("PATCHBAY_MASTER_KEY");
    let node = Patchbay::spawn(command, &log);
    let listed: Value = reqwest::get(format!("{}/api/v1/secrets", node.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"], json!([]), "{listed}");
    node.terminate();
    assert!(std::path::Path::new(&key_file).exists());
}

#[cfg(unix)]
#[tokio::test]
async fn a_key_file_others_can_read_is_refused() {
    if crate::support::sqlite_only("the key file beside the SQLite file") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let project = TestProject::new(ROOT, &[("echo", ECHO_FLOW)]);
    let dir = project.path().to_str().unwrap().to_string();
    set_secret(&dir);
    let key_file = format!("{}.key", store_file(&project).display());
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = run_until_exit(&dir);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains(&key_file), "{stderr}");
    assert!(stderr.contains("chmod 600"), "{stderr}");
}
