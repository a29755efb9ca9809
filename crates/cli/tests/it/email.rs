//! The `email` step against a real SMTP server on loopback (Python's
//! aiosmtpd, `crates/cli/tests/smtp/server.py`, installed in a virtualenv
//! by `scripts/setup-smtp` when missing): the message arrives with its
//! headers, recipients and bodies after signing in; a server that is down,
//! then busy (451), is retried until it takes the message, once; a
//! recipient refused for good (550) ends the run without a retry.
//!
//! Without Python or its package index the tests fail under `CI=true` and
//! are skipped, saying why, elsewhere.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use patchbay_store::RunStatus;
use serde_json::{Value, json};

use crate::brokers::start_node;
use crate::support::{TestProject, all_runs, binary, eventually};

const USER: &str = "shop";
/// With characters a URL must escape, and never to be seen in a journal.
const PASSWORD: &str = "s3cr@t/pw";

/// The virtualenv's python that runs the test server.
fn smtp_python() -> Option<PathBuf> {
    crate::support::python_from_setup("setup-smtp", "SMTP test server")
}

/// The test SMTP server, killed when dropped.
struct SmtpServer {
    child: Child,
    port: u16,
    folder: PathBuf,
}

impl SmtpServer {
    /// Starts the server writing to `folder`, on `port` (0: any), with
    /// `args`; returns once it listens.
    fn start(python: &Path, folder: &Path, port: u16, args: &[&str]) -> SmtpServer {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp/server.py");
        let mut child = Command::new(python)
            .arg(script)
            .arg("--folder")
            .arg(folder)
            .args([
                "--port",
                &port.to_string(),
                "--user",
                USER,
                "--password",
                PASSWORD,
            ])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the SMTP test server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("the SMTP test server's first line");
        let port = line
            .strip_prefix("ready ")
            .and_then(|port| port.trim().parse().ok())
            .unwrap_or_else(|| panic!("the SMTP test server did not start: {line:?}"));
        SmtpServer {
            child,
            port,
            folder: folder.to_path_buf(),
        }
    }

    fn url(&self) -> String {
        smtp_url(self.port)
    }

    /// The messages it accepted, in order.
    fn received(&self) -> Vec<Value> {
        self.messages(false)
    }

    /// The messages it refused for now (`--fail-first`), in order.
    fn refused(&self) -> Vec<Value> {
        self.messages(true)
    }

    fn messages(&self, refused: bool) -> Vec<Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.folder)
            .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.retain(|path| {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            name.ends_with(".json") && name.starts_with("refused-") == refused
        });
        files.sort();
        files
            .iter()
            .map(|path| serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap())
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn smtp_url(port: u16) -> String {
    let password: String = url::form_urlencoded::byte_serialize(PASSWORD.as_bytes()).collect();
    format!("smtp://{USER}:{password}@127.0.0.1:{port}")
}

const NOTIFY_FLOW: &str = r#"trigger: { manual: {} }
steps:
  - id: notify
    email:
      url: "${env:SMTP_URL}"
      from: "Shop <shop@example.com>"
    to: .customer
    cc: '["Ops <ops@example.com>"]'
    bcc: '"audit@example.com"'
    subject: '"Order \(.id) shipped"'
    body: '"Hello \(.name), order \(.id) is on its way."'
    html: '"<p>Hello <b>\(.name)</b></p>"'
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_reaches_the_server_with_its_headers_and_bodies() {
    let Some(python) = smtp_python() else {
        return;
    };
    let project = TestProject::new("", &[("notify", NOTIFY_FLOW)]);
    let server = SmtpServer::start(&python, &project.path().join("mail"), 0, &[]);
    let input = project.path().join("event.json");
    std::fs::write(
        &input,
        json!({ "id": 42, "name": "Ada", "customer": "Ada Lovelace <ada@example.org>" })
            .to_string(),
    )
    .unwrap();
    let output = Command::new(binary())
        .args(["invoke", "notify", "--input"])
        .arg(&input)
        .arg("--project")
        .arg(project.path())
        .env("SMTP_URL", server.url())
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{shown}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !shown.contains("s3cr@t"),
        "the password is in the run: {shown}"
    );
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["run"]["status"], "succeeded");
    let result = &shown["journal"][0]["output"];
    assert_eq!(result["recipients"], 3);
    assert!(
        result["reply"].as_str().unwrap().starts_with("250"),
        "{result}"
    );
    let message_id = result["message_id"].as_str().unwrap().to_string();
    assert!(
        message_id.starts_with('<') && message_id.ends_with("@example.com>"),
        "{message_id}"
    );

    let received = server.received();
    assert_eq!(received.len(), 1, "{received:?}");
    let mail = &received[0];
    assert_eq!(mail["mail_from"], "shop@example.com");
    assert_eq!(mail["login"], USER);
    let mut recipients: Vec<&str> = mail["rcpt_tos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    recipients.sort();
    assert_eq!(
        recipients,
        ["ada@example.org", "audit@example.com", "ops@example.com"]
    );
    let data = mail["data"].as_str().unwrap();
    let (head, body) = data.split_once("\r\n\r\n").expect("headers and body");
    for expected in [
        "From: Shop <shop@example.com>",
        "To: \"Ada Lovelace\" <ada@example.org>",
        "Cc: Ops <ops@example.com>",
        "Subject: Order 42 shipped",
        &format!("Message-ID: {message_id}"),
        "Content-Type: multipart/alternative",
    ] {
        assert!(
            head.contains(expected),
            "{expected:?} missing from:\n{head}"
        );
    }
    assert!(!head.contains("Bcc:"), "a Bcc header went out:\n{head}");
    assert!(
        body.contains("Hello Ada, order 42 is on its way."),
        "{body}"
    );
    assert!(
        body.contains("text/html") && body.contains("<b>Ada</b>"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_and_a_busy_server_are_retried_and_a_refused_recipient_is_not() {
    let Some(python) = smtp_python() else {
        return;
    };
    let flow = r#"trigger: { webhook: { path: /hooks/notify } }
steps:
  - id: notify
    email: { url: "${env:SMTP_URL}", from: shop@example.com, timeout: 5s }
    to: .to
    subject: '"Order \(.id)"'
    body: '"Order \(.id) is on its way."'
"#;
    let project = TestProject::new(
        "engine: { run_retries: [300ms, 300ms, 300ms, 300ms, 300ms, 300ms, 300ms, 300ms] }\n",
        &[("notify", flow)],
    );
    // A port nobody listens on yet: the server is down.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let node = start_node(&project, &[("SMTP_URL", smtp_url(port))]);
    let client = reqwest::Client::new();
    let invoke = |input: Value| {
        let client = client.clone();
        let base = node.base.clone();
        async move {
            let answer = client
                .post(format!("{base}/hooks/notify"))
                .json(&input)
                .send()
                .await
                .expect("start a run");
            assert_eq!(answer.status(), 202, "the event was not accepted");
        }
    };
    invoke(json!({ "id": 1, "to": "ada@example.org" })).await;
    let store = project.open_store().await;
    let retried = eventually(Duration::from_secs(20), || async {
        all_runs(&*store)
            .await
            .first()
            .is_some_and(|run| run.retries >= 1)
    })
    .await;
    assert!(retried, "the run was not retried while the server was down");

    // Up, but busy for the first message.
    let server = SmtpServer::start(
        &python,
        &project.path().join("mail"),
        port,
        &["--fail-first", "1", "--refuse", "nobody@example.org"],
    );
    let delivered = eventually(Duration::from_secs(20), || async {
        all_runs(&*store)
            .await
            .first()
            .is_some_and(|run| run.status == RunStatus::Succeeded)
    })
    .await;
    let run = all_runs(&*store).await.remove(0);
    assert!(delivered, "{run:?}");
    assert!(run.retries >= 2, "{run:?}");
    assert_eq!(
        server.received().len(),
        1,
        "one message, whatever the retries"
    );
    // The attempt refused for now and the one taken are one message.
    let message_id = |mail: &Value| {
        mail["data"]
            .as_str()
            .unwrap()
            .lines()
            .find(|line| line.starts_with("Message-ID: "))
            .map(str::to_string)
            .expect("a Message-ID")
    };
    let refused = server.refused();
    assert_eq!(refused.len(), 1);
    assert_eq!(message_id(&refused[0]), message_id(&server.received()[0]));

    invoke(json!({ "id": 2, "to": "nobody@example.org" })).await;
    let ended = eventually(Duration::from_secs(20), || async {
        all_runs(&*store)
            .await
            .iter()
            .any(|run| run.input["id"] == 2 && run.status == RunStatus::Dead)
    })
    .await;
    let refused = all_runs(&*store)
        .await
        .into_iter()
        .find(|run| run.input["id"] == 2)
        .unwrap();
    assert!(ended, "{refused:?}");
    assert_eq!(refused.retries, 0, "a refusal for good is not retried");
    let error = refused.error.unwrap_or_default();
    assert!(error.contains("550"), "{error}");
    assert!(!error.contains("s3cr@t"), "{error}");
    node.stop_cleanly();
}
